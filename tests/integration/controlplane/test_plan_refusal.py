"""The operator's own plan check, end to end: the control plane and the operator run as
separate processes, and Tenant CRs are written with kubectl (past the API's own check),
as a platform admin or a script could. A Tenant over its organisation's plan is refused
with a condition and an Event and nothing of it is built; a plan upgrade, or room made
by deleting an older Tenant, lets it through without anyone touching it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from tenantry import contract
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.integration.controlplane.processes import INTERNAL_TOKEN, Served, control_plane
from tests.support.kube import Kube, tenant
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually, scaled


@pytest.fixture
async def api(database: str, redis_db: str, crds: Kube) -> AsyncIterator[Served]:
    async with control_plane(
        database=database, redis=redis_db, kubeconfig=crds.kubeconfig
    ) as served:
        yield served


@pytest.fixture
def checking_operator(
    api: Served, crds: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """`tenantry operator` that knows the control plane, so it checks plan limits."""
    env = {
        **crds.env(),
        "TENANTRY_CONTROLPLANE_URL": api.internal_url,
        "TENANTRY_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "TENANTRY_PLAN_RECHECK_SECONDS": "1",
    }
    proc = OperatorProcess(env=env, log=tmp_path_factory.mktemp("operator") / "operator.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _owned(name: str, org_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    obj = tenant(name, spec)
    obj["metadata"]["labels"] = {contract.LABEL_ORG: org_id}
    return obj


def _condition(crds: Kube, name: str, kind: str) -> dict[str, Any] | None:
    body = crds.get_or_none("tenant", name) or {}
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return None


def _refused(crds: Kube, name: str) -> dict[str, Any] | None:
    cond = _condition(crds, name, "Degraded")
    return cond if cond and cond["reason"] == "PlanLimitExceeded" else None


def _admitted(crds: Kube, name: str) -> bool:
    cond = _condition(crds, name, "Degraded")
    exists = crds.get_or_none("namespace", f"tenant-{name}") is not None
    return exists and cond is not None and cond["reason"] != "PlanLimitExceeded"


def _warned(crds: Kube, name: str) -> bool:
    events = crds.get("events", "-A", "--field-selector", f"involvedObject.name={name}")
    return any(e["reason"] == "PlanLimitExceeded" for e in events["items"])


async def test_a_tenant_beyond_the_plan_is_refused_until_the_plan_allows_it(
    api: Served, crds: Kube, checking_operator: OperatorProcess
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=scaled(60)) as http:
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)  # a new organisation is on the starter plan
        name = f"big-{org_id[:8]}"
        crds.apply(_owned(name, org_id, {"plan": "growth"}))

        cond = eventually(lambda: _refused(crds, name), timeout=120, what="PlanLimitExceeded")
        assert cond is not None
        assert "'growth' is not available on the starter plan" in cond["message"]
        body = crds.get("tenant", name)
        assert body["status"]["phase"] == "Refused"
        assert _condition(crds, name, "Ready")["status"] == "False"  # type: ignore[index]
        assert crds.get_or_none("namespace", f"tenant-{name}") is None  # nothing was built
        eventually(lambda: _warned(crds, name), timeout=120, what="a PlanLimitExceeded Event")

        url = f"/v1/orgs/{org_id}/billing/subscription"
        r = await http.post(url, json={"plan": "growth"}, headers=bearer(owner))
        assert r.status_code == 201, r.text
        eventually(lambda: _admitted(crds, name), timeout=180, what="the stack after the upgrade")


async def test_the_newest_tenant_beyond_the_count_waits_for_room(
    api: Served, crds: Kube, checking_operator: OperatorProcess
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=scaled(60)) as http:
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)  # starter: 2 tenants
        names = [f"{letter}-{org_id[:8]}" for letter in "abc"]  # same second: by name
        for name in names:
            crds.apply(_owned(name, org_id, {"plan": "starter"}))
        first, second, third = names
        cond = eventually(lambda: _refused(crds, third), timeout=120, what="the third refused")
        assert cond is not None
        assert "allows 2 tenants" in cond["message"]
        for name in (first, second):
            eventually(partial(_admitted, crds, name), timeout=180, what=f"{name} built")
        assert crds.get_or_none("namespace", f"tenant-{third}") is None

        crds.run("delete", "tenant", first, "--wait=false")
        eventually(lambda: _admitted(crds, third), timeout=180, what="the third after a delete")


async def test_the_limits_route_answers_the_internal_token_only(api: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=api.url, timeout=scaled(60)) as http,
        httpx.AsyncClient(base_url=api.internal_url, timeout=scaled(60)) as internal,
    ):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        url = f"/internal/v1/orgs/{org_id}/limits"
        service = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
        # The public port does not serve it at all, whatever the token.
        for headers in ({}, bearer(owner), service):
            r = await http.get(url, headers=headers)
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "not_found"
        for headers in ({}, {"Authorization": "Bearer wrong"}, bearer(owner)):
            assert (await internal.get(url, headers=headers)).status_code == 401
        r = await internal.get(url, headers=service)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["plan"] == "starter"
        assert body["limits"]["max_tenants"] == 2
        assert body["limits"]["tenant_plans"] == ["starter"]
        unknown = "/internal/v1/orgs/00000000-0000-4000-8000-000000000000/limits"
        assert (await internal.get(unknown, headers=service)).status_code == 404
