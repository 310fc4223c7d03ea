"""The RBAC and IDOR matrices of the control plane, run over the billing routes only
and without Kubernetes: every billing route x every built-in role, and a foreign
organisation answering exactly like a missing one. The expected roles come from the
shared hand-written matrix (``tests/integration/controlplane/matrix.py``)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.routing import APIRoute

from controlplane.billing.router import router
from tests.integration.billing.conftest import Billing
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.integration.controlplane.matrix import CALLS, ORG

ROLES = ("owner", "admin", "editor", "viewer", "billing")
BILLING = [c for c in CALLS if c.template.startswith((ORG + "/billing/", ORG + "/usage"))]


def _strip(error: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in error.items() if k != "requestId"}


def test_shared_matrix_lists_every_billing_route() -> None:
    declared = {
        (method, route.path)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert {(c.method, c.template) for c in BILLING} == declared


async def test_billing_routes_by_role(billing: Billing) -> None:
    b = billing
    members = {"owner": b.owner}
    for role in ROLES[1:]:
        user = await sign_up_and_login(b.http)
        r = await b.http.post(
            b.url("/members"), json={"email": user["email"], "role": role}, headers=b.owner
        )
        assert r.status_code == 201, r.text
        members[role] = bearer(user)
    failures = []
    for call in BILLING:
        for role in ROLES:
            r = await b.http.request(
                call.method, call.url(b.org_id, role), json=call.json(role), headers=members[role]
            )
            code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
            if role in call.allowed:
                ok = r.status_code < 500 and r.status_code != 401 and code != "forbidden"
            else:
                ok = r.status_code == 403 and code == "forbidden"
            if not ok:
                failures.append(f"{role} {call.method} {call.template}: {r.status_code} {r.text}")
    assert not failures, "\n".join(failures)


async def test_foreign_org_is_indistinguishable_from_missing(billing: Billing) -> None:
    b = billing
    outsider = await sign_up_and_login(b.http)
    await new_org(b.http, outsider)
    missing = str(uuid.uuid4())
    for call in BILLING:
        foreign = await b.http.request(
            call.method,
            call.url(b.org_id, "owner"),
            json=call.json("owner"),
            headers=bearer(outsider),
        )
        absent = await b.http.request(
            call.method,
            call.url(missing, "owner"),
            json=call.json("owner"),
            headers=bearer(outsider),
        )
        assert foreign.status_code == 404, (call.method, call.template, foreign.text)
        assert foreign.json()["error"]["message"] == "organisation not found"
        assert _strip(foreign.json()["error"]) == _strip(absent.json()["error"])
        anonymous = await b.http.request(
            call.method, call.url(b.org_id, "owner"), json=call.json("owner")
        )
        assert anonymous.status_code == 401
