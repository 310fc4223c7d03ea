"""Tenants and dashboards through the API become Tenant and Dashboard CRs on the real
API server, and reads return the live status that the operator (here: the test, through
the status subresource) writes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx

from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.support.kube import Kube
from tests.support.wait import until


async def _owner_org(
    http: httpx.AsyncClient, plan: str = "enterprise"
) -> tuple[dict[str, str], str, str]:
    owner = await sign_up_and_login(http)
    org_id = await new_org(http, owner)
    slug = (await http.get(f"/v1/orgs/{org_id}", headers=bearer(owner))).json()["slug"]
    if plan != "starter":
        url = f"/v1/orgs/{org_id}/billing/subscription"
        r = await http.post(url, json={"plan": plan}, headers=bearer(owner))
        assert r.status_code == 201, r.text
        # the plan changes through subscriptions only; the old PUT is gone
        r = await http.put(f"/v1/orgs/{org_id}/billing", json={"plan": plan}, headers=bearer(owner))
        assert r.status_code == 405
    return owner, org_id, slug


async def test_tenant_lifecycle_with_live_status(
    kube_client: httpx.AsyncClient, crds: Kube
) -> None:
    http = kube_client
    owner, org_id, slug = await _owner_org(http)
    spec = {"plan": "growth", "clickhouse": {"shards": 2, "replicas": 2}, "retentionDays": 30}
    r = await http.post(
        f"/v1/orgs/{org_id}/tenants", json={"name": "acme", "spec": spec}, headers=bearer(owner)
    )
    assert r.status_code == 201, r.text
    assert r.json()["resource_name"] == f"{slug}-acme"
    cr = crds.get("tenants.tenantry.io", f"{slug}-acme")
    assert cr["metadata"]["labels"]["tenantry.io/org-id"] == org_id
    assert (
        cr["spec"]["clickhouse"]
        == {"shards": 2, "replicas": 2, "version": "25.3", "scaleInPolicy": "Refuse"}
        or cr["spec"]["clickhouse"]["shards"] == 2
    )
    status = {
        "status": {
            "phase": "Ready",
            "hostsReady": 4,
            "hostsTotal": 4,
            "hosts": "4/4",
            "conditions": [{"type": "Ready", "status": "True", "reason": "AllReady"}],
        }
    }
    crds.run(
        "patch",
        "tenants.tenantry.io",
        f"{slug}-acme",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )

    # The operator's status write reaches the API through the watch within moments.
    async def seen() -> dict[str, Any]:
        return dict(
            (await http.get(f"/v1/orgs/{org_id}/tenants/acme", headers=bearer(owner))).json()
        )

    got = await until(seen, accept=lambda got: got["status"], what="the status through the API")
    assert got["status"]["phase"] == "Ready"
    assert got["status"]["hosts"] == "4/4"
    assert got["spec"]["retentionDays"] == 30
    listed = (await http.get(f"/v1/orgs/{org_id}/tenants", headers=bearer(owner))).json()
    assert [t["name"] for t in listed] == ["acme"]
    # Update replaces the spec; the API server bumps the generation.
    r = await http.put(
        f"/v1/orgs/{org_id}/tenants/acme",
        json={"spec": {"plan": "growth", "suspend": True}},
        headers=bearer(owner),
    )
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == 2
    assert crds.get("tenants.tenantry.io", f"{slug}-acme")["spec"].get("suspend") is True
    # Dashboards reference the tenant by its name inside the org.
    dash = {
        "tenantRef": {"name": "acme"},
        "title": "Sales",
        "panels": [{"id": "total", "title": "Total", "sql": "SELECT count() FROM events"}],
    }
    r = await http.post(
        f"/v1/orgs/{org_id}/dashboards", json={"name": "sales", "spec": dash}, headers=bearer(owner)
    )
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["tenantRef"]["name"] == "acme"
    dcr = crds.get("dashboards.tenantry.io", f"{slug}-sales")
    assert dcr["spec"]["tenantRef"]["name"] == f"{slug}-acme"
    r = await http.post(
        f"/v1/orgs/{org_id}/dashboards",
        json={"name": "bad", "spec": {**dash, "tenantRef": {"name": "ghost"}}},
        headers=bearer(owner),
    )
    assert r.status_code == 422
    assert "tenantRef" in r.json()["error"]["message"]
    assert (
        await http.delete(f"/v1/orgs/{org_id}/dashboards/sales", headers=bearer(owner))
    ).status_code == 204
    r = await http.delete(f"/v1/orgs/{org_id}/tenants/acme", headers=bearer(owner))
    assert r.status_code == 204
    assert crds.get_or_none("tenants.tenantry.io", f"{slug}-acme") is None
    r = await http.get(f"/v1/orgs/{org_id}/tenants/acme", headers=bearer(owner))
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "tenant not found"


async def test_invalid_specs_and_plan_limits_write_nothing(
    kube_client: httpx.AsyncClient, crds: Kube
) -> None:
    http = kube_client
    owner, org_id, slug = await _owner_org(http, plan="starter")
    url = f"/v1/orgs/{org_id}/tenants"
    bad = [
        {"name": "t1", "spec": {"plan": "starter", "unknownField": 1}},
        {"name": "t1", "spec": {"clickhouse": {"shards": 0}}},
        {"name": "Bad_Name", "spec": {}},
        {"name": "t1", "spec": {}, "extra": True},
    ]
    for body in bad:
        r = await http.post(url, json=body, headers=bearer(owner))
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "invalid_input"
    # The starter plan: growth tenants and more than 2 tenants are refused before any write.
    r = await http.post(
        url, json={"name": "big", "spec": {"plan": "growth"}}, headers=bearer(owner)
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "plan_limit_exceeded"
    assert crds.get_or_none("tenants.tenantry.io", f"{slug}-big") is None
    # Retention beyond the plan's (starter: 30 days) is refused the same way.
    r = await http.post(
        url, json={"name": "long", "spec": {"retentionDays": 90}}, headers=bearer(owner)
    )
    assert r.status_code == 403
    assert "30 days" in r.json()["error"]["message"]
    assert crds.get_or_none("tenants.tenantry.io", f"{slug}-long") is None
    for name in ("t1", "t2"):
        assert (await http.post(url, json={"name": name}, headers=bearer(owner))).status_code == 201
    r = await http.post(url, json={"name": "t3"}, headers=bearer(owner))
    assert r.status_code == 403
    assert "2 tenants" in r.json()["error"]["message"]
    assert crds.get_or_none("tenants.tenantry.io", f"{slug}-t3") is None
    r = await http.post(url, json={"name": "t1"}, headers=bearer(owner))
    assert r.status_code == 409
    # An org with tenants cannot be deleted.
    r = await http.delete(f"/v1/orgs/{org_id}", headers=bearer(owner))
    assert r.status_code == 409


async def test_restore_a_tenant_from_its_own_backups(
    kube_client: httpx.AsyncClient, crds: Kube, database: str
) -> None:
    """POST .../restores writes a Restore as the operator expects it (the tenant's own
    backups into the tenant), refuses a tenant with no backup and a second restore while
    one runs, lists them newest first with the operator's status, and is audited."""
    http = kube_client
    owner, org_id, slug = await _owner_org(http)
    h = bearer(owner)
    base = f"/v1/orgs/{org_id}/tenants/acme"
    assert (
        await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "acme"}, headers=h)
    ).status_code == 201
    r = await http.post(f"{base}/restores", json={}, headers=h)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["message"] == "this tenant has no complete backup to restore yet"
    for bad in ({"backup": "yesterday"}, {"overwrite": "maybe"}, {"tenant": "other-org-t"}):
        r = await http.post(f"{base}/restores", json=bad, headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_input"
    mine = ("get", "restores.tenantry.io", "-l", f"tenantry.io/org-id={org_id}", "-o", "name")
    assert crds.run(*mine).strip() == ""

    backup = {"count": 2, "lastBackup": "20261206T031500.123Z", "rows": 42}
    crds.run(
        "patch", "tenants.tenantry.io", f"{slug}-acme", "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": {"backup": backup}}),
    )  # fmt: skip

    async def backed_up() -> int:
        got = (await http.get(base, headers=h)).json()
        return int((got["status"].get("backup") or {}).get("count", 0))

    await until(backed_up, what="status.backup through the API")
    r = await http.post(
        f"{base}/restores", json={"backup": "20261206T031500.123Z", "overwrite": True}, headers=h
    )
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["name"].startswith(f"{slug}-acme-")
    assert (first["backup"], first["overwrite"]) == ("20261206T031500.123Z", True)
    cr = crds.get("restores.tenantry.io", first["name"])
    assert cr["spec"] == {
        "tenant": f"{slug}-acme",
        "source": {"tenant": f"{slug}-acme", "backup": "20261206T031500.123Z"},
        "overwrite": True,
    }
    assert cr["metadata"]["labels"]["tenantry.io/org-id"] == org_id
    assert cr["metadata"]["labels"]["tenantry.io/tenant"] == "acme"

    r = await http.post(f"{base}/restores", json={}, headers=h)
    assert r.status_code == 409, r.text
    assert first["name"] in r.json()["error"]["message"]
    status = {"status": {"phase": "Succeeded", "message": "restored 42 rows"}}
    crds.run(
        "patch", "restores.tenantry.io", first["name"], "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip

    async def done() -> list[dict[str, Any]]:
        return list((await http.get(f"{base}/restores", headers=h)).json())

    listed = await until(
        done, accept=lambda rs: rs and rs[0]["status"].get("phase"), what="the Restore's status"
    )
    assert listed[0]["status"] == {"phase": "Succeeded", "message": "restored 42 rows"}
    r = await http.post(f"{base}/restores", json={}, headers=h)
    assert r.status_code == 201, r.text
    second = r.json()
    assert (second["backup"], second["overwrite"]) == ("latest", False)
    names = [x["name"] for x in (await http.get(f"{base}/restores", headers=h)).json()]
    assert set(names) == {first["name"], second["name"]}

    # Another organisation's owner can neither restore nor list this tenant's restores.
    outsider = await sign_up_and_login(http)
    theirs = await new_org(http, outsider)
    for method in ("GET", "POST"):
        r = await http.request(
            method, f"/v1/orgs/{theirs}/tenants/acme/restores", json={}, headers=bearer(outsider)
        )
        assert r.status_code == 404, r.text

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT target, detail FROM audit_events WHERE org_id = $1 "
            "AND action = 'tenant.restore' ORDER BY seq",
            uuid.UUID(org_id),
        )
    finally:
        await conn.close()
    assert [(r["target"], json.loads(r["detail"])) for r in rows] == [
        ("tenant/acme", {"backup": "20261206T031500.123Z", "overwrite": "true"}),
        ("tenant/acme", {"backup": "latest", "overwrite": "false"}),
    ]
