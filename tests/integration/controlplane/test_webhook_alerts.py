"""From Alertmanager to a customer's endpoint: an alert about a tenant becomes its
organisation's notification and, in the same transaction, a delivery to the
organisation's webhook, which the worker sends signed to a real receiver on loopback
(real PostgreSQL, real API server holding the Tenant resources), and an e-mail to its
owners (a real SMTP server on loopback). A repeat of the same occurrence sends nothing;
its resolution sends ``alert.resolved``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from controlplane.billing.access import BillingSettings
from tests.integration.controlplane.conftest import LOCAL_WEBHOOKS, bearer, make_settings, serve
from tests.integration.controlplane.processes import INTERNAL_TOKEN
from tests.integration.controlplane.test_alert_notifications import (
    ALERTS,
    SERVICE,
    _alert,
    _org_with_tenant,
    _webhook,
)
from tests.integration.controlplane.test_notification_emails import MAIL, Inbox, inbox
from tests.integration.controlplane.webhook_receiver import receiver, verify
from tests.support.kube import Kube
from tests.support.wait import until

__all__ = ["inbox"]  # the SMTP server fixture, used here too


@pytest.fixture
async def http(
    database: str, redis_db: str, crds: Kube, inbox: Inbox
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database,
        redis_db,
        kube_enabled=True,
        kubeconfig=str(Path(crds.kubeconfig)),
        **LOCAL_WEBHOOKS,
        **MAIL,
        smtp_port=inbox.port,
    )
    async with serve(settings) as (app, client):
        app.state.billing_settings = BillingSettings(internal_token=INTERNAL_TOKEN)
        yield client


async def test_an_alert_is_delivered_to_its_organisations_webhook_only(
    http: httpx.AsyncClient, inbox: Inbox
) -> None:
    async with receiver() as rec:
        owner_a, org_a, resource_a = await _org_with_tenant(http, "shop")
        owner_b, org_b, _ = await _org_with_tenant(http, "shop")
        hooks = {}
        for org, owner, path in ((org_a, owner_a, "/a"), (org_b, owner_b, "/b")):
            r = await http.post(
                f"/v1/orgs/{org}/webhooks", json={"url": rec.url(path)}, headers=bearer(owner)
            )
            assert r.status_code == 201, r.text
            hooks[path] = r.json()

        r = await http.post(ALERTS, json=_webhook(_alert(resource_a)), headers=SERVICE)
        assert r.json()["notified"] == 1
        await until(lambda: rec.at("/a"), what="org A's delivery")
        (got,) = rec.at("/a")
        assert verify(hooks["/a"]["secret"], got.headers, got.body)
        event = json.loads(got.body)
        assert event["type"] == "alert.firing"
        assert event["data"]["tenant"] == "shop"
        assert event["data"]["alertname"] == "TenantryTenantDegraded"
        (notice,) = (
            await http.get(f"/v1/orgs/{org_a}/notifications", headers=bearer(owner_a))
        ).json()
        assert event["data"]["id"] == notice["id"]

        # Alertmanager repeats a firing alert: no second delivery. Resolved: one more.
        await http.post(ALERTS, json=_webhook(_alert(resource_a)), headers=SERVICE)
        await http.post(
            ALERTS, json=_webhook(_alert(resource_a, status="resolved")), headers=SERVICE
        )
        await until(lambda: len(rec.at("/a")) >= 2, what="the resolution")
        types = [json.loads(x.body)["type"] for x in rec.at("/a")]
        assert types == ["alert.firing", "alert.resolved"]
        assert rec.at("/b") == []  # org B's webhook heard nothing of A's tenant

        # and A's owner (only) got an e-mail of each
        await until(lambda: len(inbox.received) >= 2, what="the e-mails")
        assert [to for to, _ in inbox.received] == [[owner_a["email"]]] * 2
        subjects = sorted(str(m["Subject"]).strip() for _, m in inbox.received)  # unfolded
        summary = f"Tenant {resource_a} Degraded for more than 10 minutes"
        assert subjects == [f"[Tenantry] FIRING: {summary}", f"[Tenantry] RESOLVED: {summary}"]
        assert "Tenant: shop" in inbox.received[0][1].get_content()


async def test_without_an_smtp_server_alerts_queue_no_email(
    database: str, redis_db: str, crds: Kube
) -> None:
    settings = make_settings(
        database, redis_db, kube_enabled=True, kubeconfig=str(Path(crds.kubeconfig))
    )
    async with serve(settings) as (app, http):
        app.state.billing_settings = BillingSettings(internal_token=INTERNAL_TOKEN)
        _, _, resource = await _org_with_tenant(http, "quiet")
        r = await http.post(ALERTS, json=_webhook(_alert(resource)), headers=SERVICE)
        assert r.json()["notified"] == 1
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM notification_emails") == 0
        assert await conn.fetchval("SELECT count(*) FROM alert_notifications") == 1
    finally:
        await conn.close()
