"""Organisation webhooks against real PostgreSQL and Redis and a real receiving HTTP
server on loopback (``webhook_receiver.py``): the secret shown once, the URL policy
(https, SSRF), RBAC and cross-organisation access, and the outbox's deliveries, signed
as Standard Webhooks say (checked here with HMAC written from the specification, not
with the control plane's code), retried, timed out, disabled after the last try, and
delivered by a new process after a restart.

Events enter the outbox through ``controlplane.webhooks.service.enqueue``, the call
the notification path makes in its transaction; ``test_webhook_alerts.py`` drives that
path itself (Alertmanager's webhook, real API server)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet

from controlplane.webhooks import service as webhooks
from controlplane.webhooks.worker import DeliveryWorker
from tenantry_dev.services import free_port
from tests.integration.controlplane.conftest import (
    LOCAL_WEBHOOKS,
    PASSWORD,
    bearer,
    make_settings,
    new_org,
    serve,
    sign_up_and_login,
)
from tests.integration.controlplane.processes import control_plane_process
from tests.integration.controlplane.webhook_receiver import receiver, verify
from tests.support.wait import until


async def _owner_org(http: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    owner = await sign_up_and_login(http)
    return owner, await new_org(http, owner)


async def _create(
    http: httpx.AsyncClient, org_id: str, owner: dict[str, str], url: str, **extra: Any
) -> dict[str, Any]:
    r = await http.post(
        f"/v1/orgs/{org_id}/webhooks", json={"url": url, **extra}, headers=bearer(owner)
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _enqueue(database: str, org_id: str, event_type: str = "alert.firing") -> int:
    conn = await asyncpg.connect(database)
    try:
        async with conn.transaction():
            return await webhooks.enqueue(
                conn,
                org_id=uuid.UUID(org_id),
                event_type=event_type,
                data={"id": 7, "tenant": "shop", "summary": "Tenant shop Degraded"},
            )
    finally:
        await conn.close()


async def _deliveries(
    http: httpx.AsyncClient, org_id: str, hook_id: str, owner: dict[str, str]
) -> list[dict[str, Any]]:
    r = await http.get(f"/v1/orgs/{org_id}/webhooks/{hook_id}/deliveries", headers=bearer(owner))
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


async def test_delivery_is_signed_and_shaped_as_standard_webhooks(
    local: httpx.AsyncClient, database: str
) -> None:
    async with receiver() as rec:
        owner, org_id = await _owner_org(local)
        hook = await _create(local, org_id, owner, rec.url("/hook"), event_types=["alert.firing"])
        assert hook["secret"].startswith("whsec_")
        assert await _enqueue(database, org_id, "alert.resolved") == 0  # filtered out
        assert await _enqueue(database, org_id) == 1
        await until(lambda: rec.at("/hook"), what="the delivery")
        (got,) = rec.at("/hook")
        assert verify(hook["secret"], got.headers, got.body)
        assert not verify(hook["secret"], got.headers, got.body + b" ")
        assert got.headers["webhook-id"].startswith("msg_")
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
        payload = json.loads(got.body)
        assert payload["type"] == "alert.firing"
        assert payload["data"] == {"id": 7, "tenant": "shop", "summary": "Tenant shop Degraded"}
        assert payload["timestamp"].endswith("Z")

        async def delivered() -> list[dict[str, Any]]:
            return await _deliveries(local, org_id, hook["id"], owner)

        (d,) = await until(
            delivered, what="delivered", accept=lambda d: d[0]["state"] == "delivered"
        )
        assert d["msg_id"] == got.headers["webhook-id"]
        assert d["next_attempt_at"] is None
        (attempt,) = d["attempts"]
        assert attempt["status_code"] == 200
        assert attempt["duration_ms"] >= 0
        assert attempt["response_excerpt"].startswith("answer 200 ")
        assert len(attempt["response_excerpt"]) == 256  # the answer was 5000+ characters

        # A rotated secret signs what follows; the old one no longer verifies.
        r = await local.post(
            f"/v1/orgs/{org_id}/webhooks/{hook['id']}/rotate-secret", headers=bearer(owner)
        )
        assert r.status_code == 200, r.text
        new = r.json()["secret"]
        assert new != hook["secret"]
        await _enqueue(database, org_id)
        await until(lambda: len(rec.at("/hook")) == 2, what="the second delivery")
        second = rec.at("/hook")[1]
        assert verify(new, second.headers, second.body)
        assert not verify(hook["secret"], second.headers, second.body)


async def test_a_500_is_retried_then_delivered_and_redelivery_sends_the_same_id(
    local: httpx.AsyncClient, database: str
) -> None:
    async with receiver() as rec:
        rec.answers["/flaky"] = [500]
        owner, org_id = await _owner_org(local)
        hook = await _create(local, org_id, owner, rec.url("/flaky"))
        await _enqueue(database, org_id)
        await until(lambda: len(rec.at("/flaky")) == 2, what="a retry")

        async def one() -> dict[str, Any]:
            return (await _deliveries(local, org_id, hook["id"], owner))[0]

        d = await until(one, what="delivered", accept=lambda d: d["state"] == "delivered")
        assert [a["status_code"] for a in d["attempts"]] == [500, 200]
        assert d["tries"] == 2
        first, second = rec.at("/flaky")
        assert first.headers["webhook-id"] == second.headers["webhook-id"]

        r = await local.post(
            f"/v1/orgs/{org_id}/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver",
            headers=bearer(owner),
        )
        assert r.status_code == 202, r.text
        await until(lambda: len(rec.at("/flaky")) == 3, what="the redelivery")
        assert rec.at("/flaky")[2].headers["webhook-id"] == first.headers["webhook-id"]
        r = await local.post(
            f"/v1/orgs/{org_id}/webhooks/{hook['id']}/deliveries/999999/redeliver",
            headers=bearer(owner),
        )
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


async def test_a_slow_receiver_times_out_and_the_webhook_is_disabled_after_the_last_try(
    local: httpx.AsyncClient, database: str
) -> None:
    async with receiver() as rec:
        rec.delays["/slow"] = 5.0  # the timeout is 1 s
        owner, org_id = await _owner_org(local)
        hook = await _create(local, org_id, owner, rec.url("/slow"))
        await _enqueue(database, org_id)

        async def one() -> dict[str, Any]:
            return (await _deliveries(local, org_id, hook["id"], owner))[0]

        d = await until(one, what="failed", accept=lambda d: d["state"] == "failed", timeout=60)
        # the first try and the two retries of the schedule
        assert [a["error"] for a in d["attempts"]] == ["timeout"] * 3
        assert all(a["status_code"] is None for a in d["attempts"])
        assert all(a["duration_ms"] < 4000 for a in d["attempts"])
        (listed,) = (await local.get(f"/v1/orgs/{org_id}/webhooks", headers=bearer(owner))).json()
        assert listed["enabled"] is False
        assert "3 failed attempts" in listed["disabled_reason"]
        notices = (
            await local.get(f"/v1/orgs/{org_id}/notifications", headers=bearer(owner))
        ).json()
        (notice,) = [n for n in notices if n["alertname"] == "WebhookDisabled"]
        assert notice["summary"] == "Webhook to 127.0.0.1 disabled after failed deliveries"

        # While disabled: nothing is sent, redelivery is refused; once enabled it works.
        r = await local.post(
            f"/v1/orgs/{org_id}/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver",
            headers=bearer(owner),
        )
        assert r.status_code == 409
        rec.delays.clear()
        r = await local.post(
            f"/v1/orgs/{org_id}/webhooks/{hook['id']}/enable", headers=bearer(owner)
        )
        assert r.json()["enabled"] is True
        r = await local.post(
            f"/v1/orgs/{org_id}/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver",
            headers=bearer(owner),
        )
        assert r.status_code == 202
        await until(one, what="delivered", accept=lambda d: d["state"] == "delivered")


async def test_a_receiver_that_is_down_leaves_the_delivery_pending_with_a_next_attempt(
    database: str, redis_db: str
) -> None:
    settings = make_settings(
        database, redis_db, **{**LOCAL_WEBHOOKS, "webhook_retry_schedule_seconds": [3600.0]}
    )
    async with serve(settings) as (_, http):
        owner, org_id = await _owner_org(http)
        hook = await _create(http, org_id, owner, f"http://127.0.0.1:{free_port()}/down")
        await _enqueue(database, org_id)

        async def one() -> dict[str, Any]:
            return (await _deliveries(http, org_id, hook["id"], owner))[0]

        d = await until(one, what="an attempt", accept=lambda d: d["attempts"])
        assert d["state"] == "pending"
        assert d["attempts"][0]["error"] == "ConnectError"
        # an hour later, as the schedule says
        due = datetime.fromisoformat(d["next_attempt_at"])
        assert due - datetime.now(UTC) > timedelta(minutes=50)
        assert d["tries"] == 1


async def test_the_target_is_checked_again_at_delivery(database: str, redis_db: str) -> None:
    """A webhook accepted while loopback was allowed is refused by a worker whose policy
    forbids it (as a name that now resolves to a private address would be)."""
    # The app's own worker looks once at start, then not for a minute.
    settings = make_settings(database, redis_db, **{**LOCAL_WEBHOOKS, "webhook_poll_seconds": 60})
    async with receiver() as rec, serve(settings) as (_, http):
        owner, org_id = await _owner_org(http)
        hook = await _create(http, org_id, owner, rec.url("/checked"))
        strict = make_settings(
            database, redis_db, webhook_allow_http=True, webhook_retry_schedule_seconds=[3600.0]
        )
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        try:
            await _enqueue(database, org_id)
            async with httpx.AsyncClient() as client:
                assert await DeliveryWorker(pool, strict).turn(client) == 1
        finally:
            await pool.close()
        (d,) = await _deliveries(http, org_id, hook["id"], owner)
        (attempt,) = d["attempts"]
        assert attempt["error"].startswith("target refused: host resolves to a non-global")
        assert attempt["status_code"] is None
        assert d["state"] == "pending"
        assert rec.at("/checked") == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://93.184.215.14/hook", "https://"),
        ("https://127.0.0.1/hook", "non-global"),
        ("https://[::1]/hook", "non-global"),
        ("https://169.254.169.254/latest/meta-data", "non-global"),
        ("https://10.1.2.3/hook", "non-global"),
        ("https://192.168.0.1/hook", "non-global"),
        ("https://100.64.0.1/hook", "non-global"),
        ("https://[::ffff:127.0.0.1]/hook", "non-global"),
        ("https://0.0.0.0/hook", "non-global"),
        ("https://localhost/hook", "non-global"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("ftp://93.184.215.14/hook", "https://"),
    ],
)
async def test_url_policy_refuses_with_422_naming_the_field(
    client: httpx.AsyncClient, url: str, why: str
) -> None:
    owner, org_id = await _owner_org(client)
    r = await client.post(f"/v1/orgs/{org_id}/webhooks", json={"url": url}, headers=bearer(owner))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("url: ")
    assert why in error["message"]


async def test_a_global_https_target_is_accepted_by_default(client: httpx.AsyncClient) -> None:
    """Creation resolves the name (an address literal here: no traffic leaves, since
    this organisation has no events) and accepts a global address."""
    owner, org_id = await _owner_org(client)
    hook = await _create(client, org_id, owner, "https://93.184.215.14/hook")
    r = await client.delete(f"/v1/orgs/{org_id}/webhooks/{hook['id']}", headers=bearer(owner))
    assert r.status_code == 200
    r = await client.get(f"/v1/orgs/{org_id}/webhooks", headers=bearer(owner))
    assert r.json() == []


async def test_the_secret_is_shown_once_never_listed_logged_or_audited(
    local: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner, org_id = await _owner_org(local)
    hook = await _create(local, org_id, owner, "http://127.0.0.1:9/hook?token=t0ken")
    secret = hook["secret"]
    r = await local.post(
        f"/v1/orgs/{org_id}/webhooks/{hook['id']}/rotate-secret", headers=bearer(owner)
    )
    rotated = r.json()["secret"]
    bodies = [
        (await local.get(f"/v1/orgs/{org_id}/webhooks", headers=bearer(owner))).text,
        (await local.get(f"/v1/orgs/{org_id}/audit", headers=bearer(owner))).text,
        (await local.get(f"/v1/orgs/{org_id}/audit/export", headers=bearer(owner))).text,
        (
            await local.get(
                f"/v1/orgs/{org_id}/webhooks/{hook['id']}/deliveries", headers=bearer(owner)
            )
        ).text,
        # an error about this webhook
        (
            await local.post(
                f"/v1/orgs/{org_id}/webhooks",
                json={"url": "https://127.0.0.1/"},
                headers=bearer(owner),
            )
        ).text,
    ]
    audit = json.loads(bodies[1])["events"]
    assert [e["action"] for e in audit][-2:] == ["webhook.create", "webhook.rotate_secret"]
    assert audit[-1]["target"] == f"webhook/{hook['id']}@127.0.0.1"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (*bodies, logged):
        assert secret not in text
        assert rotated not in text
        assert secret.removeprefix("whsec_") not in text
    assert "t0ken" not in bodies[1]  # the audit trail names the host, not the URL


async def test_permissions_and_other_organisations(local: httpx.AsyncClient) -> None:
    owner, org_id = await _owner_org(local)
    hook = await _create(local, org_id, owner, "http://127.0.0.1:9/hook")
    viewer = await sign_up_and_login(local)
    r = await local.post(
        f"/v1/orgs/{org_id}/members",
        json={"email": viewer["email"], "role": "viewer"},
        headers=bearer(owner),
    )
    assert r.status_code == 201, r.text
    for method, path in (
        ("POST", ""),
        ("GET", ""),
        ("DELETE", f"/{hook['id']}"),
        ("POST", f"/{hook['id']}/rotate-secret"),
        ("GET", f"/{hook['id']}/deliveries"),
    ):
        r = await local.request(
            method,
            f"/v1/orgs/{org_id}/webhooks{path}",
            json={"url": "http://127.0.0.1:9/x"} if method == "POST" and not path else None,
            headers=bearer(viewer),
        )
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden"

    # Another organisation's owner: 404 on A's routes, and A's webhook id inside their
    # own organisation is not found either.
    other, org_b = await _owner_org(local)
    r = await local.get(f"/v1/orgs/{org_id}/webhooks", headers=bearer(other))
    assert r.status_code == 404
    r = await local.delete(f"/v1/orgs/{org_id}/webhooks/{hook['id']}", headers=bearer(other))
    assert r.status_code == 404
    for method, path in (
        ("DELETE", f"/{hook['id']}"),
        ("POST", f"/{hook['id']}/rotate-secret"),
        ("POST", f"/{hook['id']}/enable"),
        ("GET", f"/{hook['id']}/deliveries"),
    ):
        r = await local.request(method, f"/v1/orgs/{org_b}/webhooks{path}", headers=bearer(other))
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["message"] == "webhook not found"
    r = await local.get(f"/v1/orgs/{org_id}/webhooks", headers=bearer(owner))
    assert [h["id"] for h in r.json()] == [hook["id"]]


async def test_an_outbox_row_is_delivered_by_a_new_process_after_a_restart(
    database: str, redis_db: str, tmp_path: Any
) -> None:
    env = {
        "TENANTRY_CP_WEBHOOK_ALLOW_HTTP": "true",
        "TENANTRY_CP_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "TENANTRY_CP_WEBHOOK_POLL_SECONDS": "0.1",
        "TENANTRY_CP_WEBHOOK_TIMEOUT_SECONDS": "1",
        "TENANTRY_CP_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
    }
    port = free_port()  # the receiver's; nothing listens there while the first process runs
    async with (
        control_plane_process(
            database=database,
            redis=redis_db,
            kubeconfig=None,
            extra_env=env,
            log=tmp_path / "a.log",
        ) as first,
        httpx.AsyncClient(base_url=first.url) as http,
    ):
        owner, org_id = await _owner_org(http)
        hook = await _create(http, org_id, owner, f"http://127.0.0.1:{port}/after")
        await _enqueue(database, org_id)

        async def one() -> dict[str, Any]:
            return (await _deliveries(http, org_id, hook["id"], owner))[0]

        await until(one, what="a failed attempt", accept=lambda d: d["attempts"])
    # The first process is gone, its delivery still pending in PostgreSQL.
    async with receiver(port) as rec:
        async with (
            control_plane_process(
                database=database,
                redis=redis_db,
                kubeconfig=None,
                extra_env=env,
                log=tmp_path / "b.log",
            ) as second,
            httpx.AsyncClient(base_url=second.url) as http,
        ):
            login = await http.post(
                "/v1/auth/login", json={"email": owner["email"], "password": PASSWORD}
            )
            me = {"Authorization": f"Bearer {login.json()['access_token']}"}

            async def delivered() -> dict[str, Any]:
                return (await _deliveries(http, org_id, hook["id"], me))[0]

            d = await until(delivered, what="delivered", accept=lambda d: d["state"] == "delivered")
        (got,) = rec.at("/after")
        assert got.headers["webhook-id"] == d["msg_id"]
        assert d["attempts"][-1]["status_code"] == 200
        assert all(a["status_code"] is None for a in d["attempts"][:-1])


async def test_workers_side_by_side_send_each_delivery_once(database: str, redis_db: str) -> None:
    """Three workers (as in three processes) claim from one outbox at the same moment:
    FOR UPDATE SKIP LOCKED and the lease give every delivery to exactly one of them."""
    settings = make_settings(database, redis_db, **{**LOCAL_WEBHOOKS, "webhook_poll_seconds": 60})
    async with receiver() as rec, serve(settings) as (_, http):
        owner, org_id = await _owner_org(http)
        await _create(http, org_id, owner, rec.url("/many"))
        for _ in range(30):
            await _enqueue(database, org_id)
        worker_settings = make_settings(
            database, redis_db, **{**LOCAL_WEBHOOKS, "webhook_batch": 4}
        )
        pools = [await asyncpg.create_pool(database, min_size=1, max_size=2) for _ in range(3)]
        try:
            workers = [DeliveryWorker(pool, worker_settings) for pool in pools]
            async with httpx.AsyncClient() as client:
                claimed = 1
                while claimed:
                    counts = await asyncio.gather(*(w.turn(client) for w in workers))
                    claimed = sum(counts)
        finally:
            for pool in pools:
                await pool.close()
        ids = [r.headers["webhook-id"] for r in rec.at("/many")]
        assert len(ids) == 30
        assert len(set(ids)) == 30


async def test_secrets_are_sealed_at_rest_with_the_signing_key_secret(
    database: str, redis_db: str
) -> None:
    key = Fernet.generate_key().decode()
    settings = make_settings(database, redis_db, **LOCAL_WEBHOOKS, signing_key_secret=key)
    async with receiver() as rec, serve(settings) as (_, http):
        owner, org_id = await _owner_org(http)
        hook = await _create(http, org_id, owner, rec.url("/sealed"))
        conn = await asyncpg.connect(database)
        try:
            query = "SELECT secret FROM webhooks WHERE id = $1"
            stored = await conn.fetchval(query, uuid.UUID(hook["id"]))
        finally:
            await conn.close()
        assert stored.startswith("fernet:")
        assert hook["secret"] not in stored
        await _enqueue(database, org_id)
        await until(lambda: rec.at("/sealed"), what="the delivery")
        (got,) = rec.at("/sealed")
        assert verify(hook["secret"], got.headers, got.body)
