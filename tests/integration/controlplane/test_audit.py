"""The audit trail: mutations and auth events are recorded with who, where and which
request; the per-org hash chain verifies, and any edit or deletion is detected both by
the API and by `tenantry controlplane audit-verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import asyncpg
import httpx

from controlplane.audit import service as audit
from controlplane.context import (
    SERVICE_CLIENT,
    SERVICE_PRINCIPAL,
    OrgAccess,
    Principal,
    RequestInfo,
)
from controlplane.orgs import repository as orgs
from controlplane.rbac.permissions import Grants
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.support.wait import scaled


def _verify_cli(database: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantry_cli", "controlplane", "audit-verify"],
        env={**os.environ, "TENANTRY_CP_DATABASE_URL": database},
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(120),
    )


async def _activity(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    owner = await sign_up_and_login(http)
    org_id = await new_org(http, owner)
    h = {**bearer(owner), "User-Agent": "audit-test/1.0", "X-Request-ID": "req-audit-1"}
    await http.patch(f"/v1/orgs/{org_id}", json={"name": "Renamed"}, headers=h)
    await http.put(f"/v1/orgs/{org_id}/roles/r1", json={"permissions": ["orgs:read"]}, headers=h)
    await http.delete(f"/v1/orgs/{org_id}/roles/r1", headers=h)
    return org_id, h


async def test_events_are_recorded_filtered_and_exported(client: httpx.AsyncClient) -> None:
    org_id, h = await _activity(client)
    page = (await client.get(f"/v1/orgs/{org_id}/audit", headers=h)).json()
    actions = [e["action"] for e in page["events"]]
    assert actions == ["org.create", "org.update", "role.put", "role.delete"]
    update = page["events"][1]
    assert update["user_agent"] == "audit-test/1.0"
    assert update["request_id"] == "req-audit-1"
    assert update["ip"] == "203.0.113.7"
    assert update["outcome"] == "success"
    assert update["prev_hash"] == page["events"][0]["hash"]
    r = await client.get(f"/v1/orgs/{org_id}/audit", params={"action": "role"}, headers=h)
    assert [e["action"] for e in r.json()["events"]] == ["role.put", "role.delete"]
    r = await client.get(f"/v1/orgs/{org_id}/audit", params={"limit": 2}, headers=h)
    assert r.json()["next_after"] == 2
    r = await client.get(f"/v1/orgs/{org_id}/audit", params={"limit": 2, "after": 2}, headers=h)
    assert [e["seq"] for e in r.json()["events"]] == [3, 4]
    r = await client.get(f"/v1/orgs/{org_id}/audit/export", headers=h)
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4]
    # No secrets anywhere in the trail.
    assert "Bearer" not in r.text
    assert "password" not in r.text


async def test_verify_detects_edits_and_deletions(client: httpx.AsyncClient, database: str) -> None:
    org_id, h = await _activity(client)
    assert (await client.get(f"/v1/orgs/{org_id}/audit/verify", headers=h)).json() == {
        "ok": True,
        "checked": 4,
        "problem": "",
        "broken_at": None,
    }
    ok = _verify_cli(database)
    assert ok.returncode == 0, ok.stdout
    assert f"ok      org:{org_id}: 4 events" in ok.stdout
    conn = await asyncpg.connect(database)
    oid = uuid.UUID(org_id)
    try:
        actor = await conn.fetchval(
            "SELECT actor FROM audit_events WHERE org_id = $1 AND seq = 2", oid
        )
        await conn.execute(
            "UPDATE audit_events SET actor = 'someone-else' WHERE org_id = $1 AND seq = 2", oid
        )
        verdict = (await client.get(f"/v1/orgs/{org_id}/audit/verify", headers=h)).json()
        assert verdict["ok"] is False
        assert verdict["broken_at"] == 2
        bad = _verify_cli(database)
        assert bad.returncode == 1
        assert (
            f"BROKEN  org:{org_id}: event content does not match its hash (at seq 2" in bad.stdout
        )
        # Restored, the chain verifies again; dropping the newest event breaks the head.
        await conn.execute(
            "UPDATE audit_events SET actor = $2 WHERE org_id = $1 AND seq = 2", oid, actor
        )
        verdict = (await client.get(f"/v1/orgs/{org_id}/audit/verify", headers=h)).json()
        assert verdict["ok"] is True
        await conn.execute("DELETE FROM audit_events WHERE org_id = $1 AND seq = 4", oid)
        verdict = (await client.get(f"/v1/orgs/{org_id}/audit/verify", headers=h)).json()
        assert verdict == {
            "ok": False,
            "checked": 3,
            "problem": "chain head does not match the last event",
            "broken_at": 4,
        }
    finally:
        await conn.close(timeout=scaled(30))


async def test_record_as_writes_the_org_the_actor_and_the_request(database: str) -> None:
    """The one helper every org-scoped service audits through: the access's organisation,
    its member (or the internal service, only by its own principal) as actor, and the
    caller's request fields, in the org's chain."""
    info = RequestInfo(ip="198.51.100.4", user_agent="record-as/1.0", request_id="req-ra-1")
    member = Principal(user_id=uuid.uuid4(), session="s1", client_id="console")
    # A user signed in through an OAuth client registered under the service's client_id.
    lookalike = Principal(user_id=uuid.uuid4(), session="s2", client_id=SERVICE_CLIENT)
    conn = await asyncpg.connect(database)
    try:
        org = await orgs.insert(conn, slug=f"ra-{uuid.uuid4().hex[:8]}", name="RA", plan="starter")
        assert org is not None
        grants = Grants.of(["orgs:read"])
        async with conn.transaction():
            for principal, action in [
                (member, "thing.create"),
                (SERVICE_PRINCIPAL, "thing.close"),
                (lookalike, "thing.delete"),
            ]:
                access = OrgAccess(org=org, role="admin", grants=grants, principal=principal)
                await audit.record_as(
                    conn, access, action=action, target="thing/1", info=info, detail={"k": "v"}
                )
        rows = await conn.fetch(
            "SELECT chain, seq, org_id, actor, action, target, outcome, ip, user_agent,"
            " request_id, detail FROM audit_events WHERE org_id = $1 ORDER BY seq",
            org.id,
        )
    finally:
        await conn.close(timeout=scaled(30))
    common = {
        "chain": f"org:{org.id}",
        "org_id": org.id,
        "target": "thing/1",
        "outcome": "success",
        "ip": "198.51.100.4",
        "user_agent": "record-as/1.0",
        "request_id": "req-ra-1",
        "detail": {"k": "v"},
    }
    assert [{**dict(r), "detail": json.loads(r["detail"])} for r in rows] == [
        {**common, "seq": 1, "actor": str(member.user_id), "action": "thing.create"},
        {**common, "seq": 2, "actor": "service:internal", "action": "thing.close"},
        {**common, "seq": 3, "actor": str(lookalike.user_id), "action": "thing.delete"},
    ]


async def test_auth_events_form_the_system_chain(client: httpx.AsyncClient, database: str) -> None:
    user = await sign_up_and_login(client)
    await client.post("/v1/auth/login", json={"email": user["email"], "password": "nope nope"})
    await client.post("/v1/auth/refresh", json={"refresh_token": user["refresh"]})
    await client.post("/v1/auth/refresh", json={"refresh_token": user["refresh"]})  # reuse
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT action, outcome FROM audit_events WHERE chain = 'system' ORDER BY seq"
        )
    finally:
        await conn.close(timeout=scaled(30))
    assert [(r["action"], r["outcome"]) for r in rows] == [
        ("auth.signup", "success"),
        ("auth.login", "success"),
        ("auth.login", "failure"),
        ("auth.refresh", "success"),
        ("auth.refresh_reuse", "denied"),
    ]
    assert _verify_cli(database).returncode == 0


async def test_denials_are_audited(client: httpx.AsyncClient) -> None:
    owner = await sign_up_and_login(client)
    org_id = await new_org(client, owner)
    viewer = await sign_up_and_login(client)
    await client.post(
        f"/v1/orgs/{org_id}/members",
        json={"email": viewer["email"], "role": "viewer"},
        headers=bearer(owner),
    )
    r = await client.patch(f"/v1/orgs/{org_id}", json={"name": "x"}, headers=bearer(viewer))
    assert r.status_code == 403
    page = await client.get(
        f"/v1/orgs/{org_id}/audit", params={"outcome": "denied"}, headers=bearer(owner)
    )
    [event] = page.json()["events"]
    assert event["action"] == "access.denied"
    assert event["detail"] == {"permission": "orgs:update", "method": "PATCH"}
    assert (await client.get(f"/v1/orgs/{org_id}/audit/verify", headers=bearer(owner))).json()["ok"]


async def test_failed_mutations_are_audited(client: httpx.AsyncClient) -> None:
    owner = await sign_up_and_login(client)
    org_id = await new_org(client, owner)
    h = bearer(owner)
    await client.put(f"/v1/orgs/{org_id}/roles/r1", json={"permissions": ["orgs:read"]}, headers=h)
    other = await sign_up_and_login(client)
    await client.post(
        f"/v1/orgs/{org_id}/members", json={"email": other["email"], "role": "r1"}, headers=h
    )
    r = await client.delete(f"/v1/orgs/{org_id}/roles/r1", headers=h)
    assert r.status_code == 409
    page = await client.get(f"/v1/orgs/{org_id}/audit", params={"outcome": "failure"}, headers=h)
    [event] = page.json()["events"]
    assert event["action"] == "request.failed"
    assert event["detail"] == {
        "method": "DELETE",
        "route": "/v1/orgs/{org_id}/roles/{role}",
        "code": "conflict",
    }
    # Reads that fail are not audited; the chain still verifies.
    await client.get(f"/v1/orgs/{org_id}/members/{org_id}", headers=h)
    verdict = await client.get(f"/v1/orgs/{org_id}/audit/verify", headers=h)
    assert verdict.json()["ok"] is True


async def test_failure_audits_never_starve_the_pool(database: str, redis_db: str) -> None:
    """Recording a failure must not need a second connection while the request still
    holds its own: with a small pool and a burst of failures that would deadlock."""
    import asyncio

    from tests.integration.controlplane.conftest import make_settings, serve

    settings = make_settings(database, redis_db, db_pool_max=2, db_pool_min=1)
    async with serve(settings) as (_, http):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        viewer = await sign_up_and_login(http)
        await http.post(
            f"/v1/orgs/{org_id}/members",
            json={"email": viewer["email"], "role": "viewer"},
            headers=bearer(owner),
        )
        logins = [
            http.post("/v1/auth/login", json={"email": f"x{i}@example.com", "password": "nope"})
            for i in range(8)
        ]
        denials = [
            http.patch(f"/v1/orgs/{org_id}", json={"name": "x"}, headers=bearer(viewer))
            for _ in range(8)
        ]
        async with asyncio.timeout(scaled(120)):
            results = await asyncio.gather(*logins, *denials)
        assert [r.status_code for r in results] == [401] * 8 + [403] * 8
        page = await http.get(
            f"/v1/orgs/{org_id}/audit", params={"outcome": "denied"}, headers=bearer(owner)
        )
        assert len(page.json()["events"]) == 8
