"""Alertmanager's webhook into the control plane: an alert naming a tenant becomes a
notification of that tenant's organisation, and of no other (real PostgreSQL, real API
server holding the Tenant resources)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.billing.access import BillingSettings
from controlplane.settings import Settings
from tenantry import contract, internal_api
from tests.integration.controlplane.conftest import (
    bearer,
    make_settings,
    new_org,
    serve,
    sign_up_and_login,
)
from tests.integration.controlplane.processes import INTERNAL_TOKEN as TOKEN
from tests.support.kube import Kube

SERVICE = {"Authorization": f"Bearer {TOKEN}"}
FIRING_SINCE = "2026-12-06T10:00:00Z"
NO_END = "0001-01-01T00:00:00Z"  # what Alertmanager sends while an alert fires


# The route on the internal listener: the app's internal port in the URL, as uvicorn
# puts the port of the socket a request came in on into the ASGI scope.
ALERTS = (
    f"http://cp.test:{Settings.model_fields['internal_port'].default}{internal_api.ALERTS_PATH}"
)


@pytest.fixture
async def http(database: str, redis_db: str, crds: Kube) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database, redis_db, kube_enabled=True, kubeconfig=str(Path(crds.kubeconfig))
    )
    async with serve(settings) as (app, client):
        app.state.billing_settings = BillingSettings(internal_token=TOKEN)
        yield client


async def _org_with_tenant(http: httpx.AsyncClient, name: str) -> tuple[dict[str, str], str, str]:
    """(owner, org id, the Tenant resource's name) of a new organisation with one tenant."""
    owner = await sign_up_and_login(http)
    org_id = await new_org(http, owner)
    r = await http.post(
        f"/v1/orgs/{org_id}/tenants", json={"name": name, "spec": {}}, headers=bearer(owner)
    )
    assert r.status_code == 201, r.text
    return owner, org_id, str(r.json()["resource_name"])


def _alert(resource: str | None, *, status: str = "firing", **labels: str) -> dict[str, Any]:
    named = {"tenant": resource, "namespace": contract.tenant_namespace(resource or "")}
    return {
        "status": status,
        "labels": {
            "alertname": "TenantryTenantDegraded",
            "severity": "warning",
            **(named if resource else {}),
            **labels,
        },
        "annotations": {"summary": f"Tenant {resource} Degraded for more than 10 minutes"},
        "startsAt": FIRING_SINCE,
        "endsAt": NO_END if status == "firing" else "2026-12-06T10:30:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"fp-{resource}",
    }


def _webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4), with the fields this route ignores."""
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tenantry",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


async def _notices(http: httpx.AsyncClient, org_id: str, user: dict[str, str]) -> Any:
    r = await http.get(f"/v1/orgs/{org_id}/notifications", headers=bearer(user))
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_alert_reaches_its_tenants_organisation_only(http: httpx.AsyncClient) -> None:
    owner_a, org_a, resource_a = await _org_with_tenant(http, "shop")
    owner_b, org_b, resource_b = await _org_with_tenant(http, "shop")
    assert resource_a != resource_b

    r = await http.post(
        ALERTS,
        json=_webhook(
            _alert(resource_a),
            _alert(None, alertname="TenantryControlPlaneSlow"),  # a platform alert
            _alert("nobody-knows-this"),  # no such Tenant
            # the namespace of another tenant: refused rather than guessed
            {**_alert(resource_b), "labels": {"tenant": resource_b, "namespace": "kube-system"}},
        ),
        headers=SERVICE,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 4, "notified": 1, "unmatched": 3}

    (notice,) = await _notices(http, org_a, owner_a)
    assert notice["tenant"] == "shop"  # the organisation's name for it
    assert notice["alertname"] == "TenantryTenantDegraded"
    assert notice["status"] == "firing"
    assert notice["ends_at"] is None
    assert notice["summary"] == f"Tenant {resource_a} Degraded for more than 10 minutes"
    assert await _notices(http, org_b, owner_b) == []
    # org B's owner cannot read org A's
    r = await http.get(f"/v1/orgs/{org_a}/notifications", headers=bearer(owner_b))
    assert r.status_code in (403, 404)

    # the same occurrence resolved: the notice is updated, not repeated
    r = await http.post(
        ALERTS,
        json=_webhook(_alert(resource_a, status="resolved")),
        headers=SERVICE,
    )
    assert r.json() == {"received": 1, "notified": 1, "unmatched": 0}
    (notice,) = await _notices(http, org_a, owner_a)
    assert notice["status"] == "resolved"
    assert notice["ends_at"] is not None


async def test_an_alert_naming_another_org_still_goes_to_the_tenants_owner(
    http: httpx.AsyncClient,
) -> None:
    """The organisation comes from the Tenant resource, never from the alert's labels."""
    owner_a, org_a, resource_a = await _org_with_tenant(http, "web")
    owner_b, org_b, _ = await _org_with_tenant(http, "web")
    forged = _alert(resource_a, **{contract.LABEL_ORG: org_b, "org_id": org_b})
    r = await http.post(ALERTS, json=_webhook(forged), headers=SERVICE)
    assert r.json()["notified"] == 1
    assert len(await _notices(http, org_a, owner_a)) == 1
    assert await _notices(http, org_b, owner_b) == []


async def test_only_the_internal_token_posts_and_bad_bodies_are_422(
    http: httpx.AsyncClient,
) -> None:
    owner, _org, resource = await _org_with_tenant(http, "api")
    body = _webhook(_alert(resource))
    for headers in ({}, bearer(owner), {"Authorization": "Bearer not-the-token"}):
        r = await http.post(ALERTS, json=body, headers=headers)
        assert r.status_code == 401, headers
    for bad in (
        {**body, "version": "3"},
        {**body, "alerts": [{**_alert(resource), "status": "maybe"}]},
        {**body, "alerts": [{**_alert(resource), "startsAt": "yesterday"}]},
        {**body, "alerts": [_alert(resource)] * (internal_api.MAX_ALERTS + 1)},
    ):
        r = await http.post(ALERTS, json=bad, headers=SERVICE)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_input"
