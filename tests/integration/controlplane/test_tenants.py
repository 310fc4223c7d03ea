"""Tenants and dashboards through the API become Tenant and Dashboard CRs on the real
API server, and reads return the live status that the operator (here: the test, through
the status subresource) writes."""

from __future__ import annotations

import json
from typing import Any

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
