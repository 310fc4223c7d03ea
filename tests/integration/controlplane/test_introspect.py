"""API-key introspection for the ingestion service, end to end: the real
``ingestion.auth.IntrospectionValidator`` (through ``tenantry.internal_client``) asks
the control plane running under uvicorn on loopback about keys created through the
API."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn

from controlplane.app import create_app
from controlplane.billing.access import BillingSettings
from ingestion.auth import IntrospectionValidator, KeyRejected, KeyServiceUnavailable, authorize
from tenantry.internal_client import InternalClient
from tests.integration.controlplane.conftest import (
    bearer,
    make_settings,
    new_org,
    sign_up_and_login,
)
from tests.integration.controlplane.processes import INTERNAL_TOKEN as TOKEN
from tests.integration.controlplane.servers import free_port
from tests.support.kube import Kube
from tests.support.wait import scaled, stop_task, until

INTROSPECT = "/internal/v1/apikeys/introspect"


@dataclass(frozen=True)
class Listeners:
    public: str
    internal: str


@pytest.fixture
async def served(database: str, redis_db: str, crds: Kube) -> AsyncIterator[Listeners]:
    """The control plane under uvicorn on two free loopback ports, as ``serve`` runs it:
    the public API and the internal listener."""
    port, internal_port = free_port(), free_port()
    settings = make_settings(
        database,
        redis_db,
        kube_enabled=True,
        kubeconfig=str(Path(crds.kubeconfig)),
        internal_port=internal_port,
    )
    app = create_app(settings)
    app.state.billing_settings = BillingSettings(internal_token=TOKEN)
    configs = [
        uvicorn.Config(app, host="127.0.0.1", port=p, log_level="warning", lifespan="on")
        for p in (port, internal_port)
    ]
    server = uvicorn.Server(configs[0])
    task = asyncio.create_task(server.serve(sockets=[c.bind_socket() for c in configs]))

    def started() -> bool:
        if task.done():
            task.result()  # it failed to start: say why
        return bool(server.started)

    try:
        await until(started, what="uvicorn serving")
        yield Listeners(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal_port}")
    finally:
        server.should_exit = True  # a graceful stop, bounded, then a cancel
        await asyncio.wait({task}, timeout=scaled(30))
        await stop_task(task, what="uvicorn")


async def test_ingestion_validator_checks_keys_at_the_control_plane(
    served: Listeners, database: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=served.public) as http,
        httpx.AsyncClient(base_url=served.internal) as cp_internal,
    ):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        slug = (await http.get(f"/v1/orgs/{org_id}", headers=bearer(owner))).json()["slug"]
        h = bearer(owner)
        r = await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "shop"}, headers=h)
        assert r.status_code == 201, r.text
        tenant_cr = r.json()["resource_name"]
        assert tenant_cr == f"{slug}-shop"
        url = f"/v1/orgs/{org_id}/tenants/shop/apikeys"
        r = await http.post(url, json={"name": "ingest", "expires_in_days": 7}, headers=h)
        assert r.status_code == 201, r.text
        key, key_id = r.json()["key"], r.json()["id"]
        r = await http.post(url, json={"name": "reader", "scopes": ["queries:read"]}, headers=h)
        read_only_key = r.json()["key"]

        # The route itself: on the internal listener only (the public port answers it as
        # a path that does not exist), internal token only, the same answer for every
        # unusable key.
        internal = {"Authorization": f"Bearer {TOKEN}"}
        for headers in ({}, h, internal):
            r = await http.post(INTROSPECT, json={"key": key}, headers=headers)
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "not_found"
        for headers in ({}, {"Authorization": "Bearer wrong"}, h):
            r = await cp_internal.post(INTROSPECT, json={"key": key}, headers=headers)
            assert r.status_code == 401, r.text
            assert "tenant" not in r.text
        # And the internal listener serves nothing else but the probes.
        assert (await cp_internal.get(f"/v1/orgs/{org_id}", headers=h)).status_code == 404
        assert (await cp_internal.get("/readyz")).status_code == 200
        r = await cp_internal.post(INTROSPECT, json={"key": key}, headers=internal)
        assert r.status_code == 200
        body = r.json()
        assert body["active"] is True
        assert body["tenant"] == tenant_cr
        assert body["org_id"] == org_id
        assert body["scopes"] == ["events:write"]
        assert body["expires_at"] is not None
        for unknown in ("tnt_nope_nope", "garbage", key + "x"):
            r = await cp_internal.post(INTROSPECT, json={"key": unknown}, headers=internal)
            assert r.json() == {
                "active": False,
                "tenant": "",
                "org_id": "",
                "scopes": [],
                "expires_at": None,
            }
        r = await cp_internal.post(INTROSPECT, json={"key": key, "extra": 1}, headers=internal)
        assert r.status_code == 422

        client = InternalClient(served.internal, token=TOKEN)
        validator = IntrospectionValidator(client, ttl=0.0, negative_ttl=0.0)
        try:
            # The same client reads the organisation's plan limits from the real route.
            limits = await client.org_limits(org_id)
            assert limits is not None
            r = await http.get(f"/v1/orgs/{org_id}/billing/plans", headers=h)
            plans = {p["key"]: p["limits"] for p in r.json()}
            assert limits.limits.model_dump() == plans[limits.plan]
            assert await client.org_limits(str(uuid.uuid4())) is None  # unknown: 404

            now = dt.datetime.now(dt.UTC)
            info = await validator.lookup(key)
            assert info is not None
            assert authorize(info, tenant=tenant_cr, now=now).org_id == org_id
            with pytest.raises(KeyRejected) as other:
                authorize(info, tenant=f"{slug}-other", now=now)
            assert other.value.status == 403
            with pytest.raises(KeyRejected) as scope:
                authorize(await validator.lookup(read_only_key), tenant=tenant_cr, now=now)
            assert scope.value.status == 403
            assert (
                await validator.lookup("tnt_aaaaaaaa_" + "A" * 43) is None
            )  # well-shaped, unknown

            # Expired and revoked keys become inactive (the validator sees None).
            conn = await asyncpg.connect(database)
            try:
                await conn.execute(
                    "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
                    key_id,
                )
                assert await validator.lookup(key) is None
                await conn.execute("UPDATE api_keys SET expires_at = NULL WHERE id = $1", key_id)
                assert await validator.lookup(key) is not None
                last_used = await conn.fetchval(
                    "SELECT last_used_at FROM api_keys WHERE id = $1", key_id
                )
                assert last_used is not None
            finally:
                await conn.close(timeout=scaled(30))
            r = await http.delete(f"{url}/{key_id}", headers=h)
            assert r.status_code == 200
            assert await validator.lookup(key) is None
        finally:
            await validator.close()
            await client.aclose()

        # A validator holding the wrong token reports the service unavailable, not "no".
        wrong_client = InternalClient(served.internal, token="not-it")
        wrong = IntrospectionValidator(wrong_client, ttl=0.0, negative_ttl=0.0)
        try:
            with pytest.raises(KeyServiceUnavailable):
                await wrong.lookup(read_only_key)
        finally:
            await wrong.close()
            await wrong_client.aclose()
