"""API keys: shown once, stored as a digest, listed by prefix, scoped, expiring,
revocable, and revoked with their tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from controlplane.apikeys import service
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.support.wait import scaled


async def test_api_key_lifecycle(kube_client: httpx.AsyncClient, database: str) -> None:
    http = kube_client
    owner = await sign_up_and_login(http)
    org_id = await new_org(http, owner)
    h = bearer(owner)
    assert (
        await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "shop"}, headers=h)
    ).status_code == 201
    url = f"/v1/orgs/{org_id}/tenants/shop/apikeys"
    r = await http.post(
        url, json={"name": "ingest", "scopes": ["events:write"], "expires_in_days": 30}, headers=h
    )
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert key.startswith(f"tnt_{created['prefix']}_")
    listed = (await http.get(url, headers=h)).json()
    assert listed[0]["prefix"] == created["prefix"]
    assert "key" not in listed[0]
    assert key not in (await http.get(url, headers=h)).text
    r = await http.post(url, json={"name": "x", "scopes": ["admin:all"]}, headers=h)
    assert r.status_code == 422
    r = await http.post(f"/v1/orgs/{org_id}/tenants/nope/apikeys", json={"name": "x"}, headers=h)
    assert r.status_code == 404

    conn = await asyncpg.connect(database)
    try:
        stored = await conn.fetchval("SELECT key_hash FROM api_keys")
        assert key.encode() not in bytes(stored)
        assert len(bytes(stored)) == 32
        ident = await service.authenticate(conn, key)
        assert ident is not None
        assert (ident.tenant, ident.scopes) == ("shop", ["events:write"])
        assert await service.authenticate(conn, key + "x") is None
        # Expired keys stop working.
        await conn.execute(
            "UPDATE api_keys SET expires_at = $1", datetime.now(UTC) - timedelta(seconds=1)
        )
        assert await service.authenticate(conn, key) is None
        await conn.execute("UPDATE api_keys SET expires_at = NULL")
        r = await http.delete(f"{url}/{created['id']}", headers=h)
        assert r.status_code == 200
        assert r.json()["revoked_at"] is not None
        assert await service.authenticate(conn, key) is None
        # Deleting the tenant revokes its remaining keys.
        second = (await http.post(url, json={"name": "second"}, headers=h)).json()["key"]
        assert await service.authenticate(conn, second) is not None
        assert (await http.delete(f"/v1/orgs/{org_id}/tenants/shop", headers=h)).status_code == 204
        assert await service.authenticate(conn, second) is None
    finally:
        await conn.close(timeout=scaled(30))
