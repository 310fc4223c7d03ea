"""RBAC matrix (every organisation route x every built-in role), IDOR matrix (every
route x a foreign organisation → 404, identical to a missing one), custom roles scoped
to one tenant, and the rules against privilege escalation."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from controlplane.app import create_app
from controlplane.settings import Settings
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.integration.controlplane.matrix import CALLS, DASH_SPEC, Call

ROLES = ("owner", "admin", "editor", "viewer", "billing")


def test_matrix_covers_every_org_route() -> None:
    app = create_app(Settings())
    actual = {
        (m, str(ctx.path))
        for ctx in iter_route_contexts(app.routes)
        if isinstance(ctx.original_route, APIRoute) and str(ctx.path).startswith("/v1/orgs/{")
        for m in ctx.original_route.methods or ()
    }
    assert {(c.method, c.template) for c in CALLS} == actual


async def _setup(http: httpx.AsyncClient) -> tuple[str, dict[str, str], dict[str, dict[str, str]]]:
    owner = await sign_up_and_login(http)
    org_id = await new_org(http, owner)
    h = bearer(owner)
    subscribe = f"/v1/orgs/{org_id}/billing/subscription"
    assert (await http.post(subscribe, json={"plan": "enterprise"}, headers=h)).status_code == 201
    assert (
        await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "t1"}, headers=h)
    ).status_code == 201
    assert (
        await http.post(
            f"/v1/orgs/{org_id}/dashboards", json={"name": "d1", "spec": DASH_SPEC}, headers=h
        )
    ).status_code == 201
    members = {"owner": owner}
    for role in ROLES[1:]:
        user = await sign_up_and_login(http)
        r = await http.post(
            f"/v1/orgs/{org_id}/members", json={"email": user["email"], "role": role}, headers=h
        )
        assert r.status_code == 201, r.text
        members[role] = user
    return org_id, owner, members


async def _call(
    http: httpx.AsyncClient, call: Call, org_id: str, role: str, headers: dict[str, str]
) -> httpx.Response:
    return await http.request(
        call.method, call.url(org_id, role), json=call.json(role), headers=headers
    )


async def test_rbac_matrix(kube_client: httpx.AsyncClient) -> None:
    http = kube_client
    org_id, _, members = await _setup(http)
    failures = []
    for call in CALLS:
        for role in ROLES:
            r = await _call(http, call, org_id, role, bearer(members[role]))
            body = (
                r.json()
                if r.content and r.headers["content-type"].startswith("application/json")
                else {}
            )
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            if role in call.allowed:
                ok = (
                    r.status_code < 500
                    and code != "forbidden"
                    and r.status_code != 401
                    and (
                        body.get("error", {}).get("message") != "organisation not found"
                        if isinstance(body, dict)
                        else True
                    )
                )
            else:
                ok = r.status_code == 403 and code == "forbidden"
            if not ok:
                failures.append(
                    f"{role:8} {call.method} {call.template}: {r.status_code} {r.text[:120]}"
                )
    assert not failures, "\n".join(failures)


async def test_idor_matrix_foreign_org_is_indistinguishable_from_missing(
    kube_client: httpx.AsyncClient,
) -> None:
    http = kube_client
    org_a, _, _ = await _setup(http)
    outsider = await sign_up_and_login(http)
    org_b = await new_org(http, outsider)  # the outsider owns B: every permission there
    missing = str(uuid.uuid4())
    for call in CALLS:
        foreign = await _call(http, call, org_a, "owner", bearer(outsider))
        absent = await _call(http, call, missing, "owner", bearer(outsider))
        assert foreign.status_code == 404, (call.method, call.template, foreign.text)
        assert foreign.json()["error"]["message"] == "organisation not found"
        assert absent.status_code == 404
        assert {k: v for k, v in foreign.json()["error"].items() if k != "requestId"} == {
            k: v for k, v in absent.json()["error"].items() if k != "requestId"
        }
        anonymous = await _call(http, call, org_a, "owner", {})
        assert anonymous.status_code == 401
    # A's tenant and dashboard names, asked for inside the outsider's own org: not found.
    for path in ("/tenants/t1", "/dashboards/d1", "/tenants/t1/apikeys"):
        r = await http.get(f"/v1/orgs/{org_b}{path}", headers=bearer(outsider))
        assert r.status_code == 404, path
    r = await http.post(
        f"/v1/orgs/{org_b}/tenants/t1/apikeys", json={"name": "steal"}, headers=bearer(outsider)
    )
    assert r.status_code == 404


async def test_custom_role_scoped_to_one_tenant(kube_client: httpx.AsyncClient) -> None:
    http = kube_client
    org_id, owner, _ = await _setup(http)
    h = bearer(owner)
    assert (
        await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "t2"}, headers=h)
    ).status_code == 201
    r = await http.put(
        f"/v1/orgs/{org_id}/roles/t1-operator",
        json={"permissions": ["orgs:read", "tenants:read@tenant/t1", "apikeys:*@tenant/t1"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    user = await sign_up_and_login(http)
    r = await http.post(
        f"/v1/orgs/{org_id}/members",
        json={"email": user["email"], "role": "t1-operator"},
        headers=h,
    )
    assert r.status_code == 201
    u = bearer(user)
    assert (await http.get(f"/v1/orgs/{org_id}/tenants/t1", headers=u)).status_code == 200
    assert (await http.get(f"/v1/orgs/{org_id}/tenants/t2", headers=u)).status_code == 403
    listed = (await http.get(f"/v1/orgs/{org_id}/tenants", headers=u)).json()
    assert [t["name"] for t in listed] == ["t1"]
    assert (
        await http.post(f"/v1/orgs/{org_id}/tenants/t1/apikeys", json={"name": "k"}, headers=u)
    ).status_code == 201
    assert (
        await http.post(f"/v1/orgs/{org_id}/tenants/t2/apikeys", json={"name": "k"}, headers=u)
    ).status_code == 403
    assert (
        await http.put(f"/v1/orgs/{org_id}/tenants/t1", json={"spec": {}}, headers=u)
    ).status_code == 403
    assert (await http.get(f"/v1/orgs/{org_id}/dashboards", headers=u)).status_code == 403


@pytest.mark.parametrize(
    ("permissions", "status"),
    [
        (["tenants:fly"], 422),
        (["billing:read@tenant/t1"], 422),
        (["nonsense"], 422),
        (["tenants:read@tenant/Bad_Name"], 422),
    ],
)
async def test_invalid_grants_are_rejected(
    client: httpx.AsyncClient, permissions: list[str], status: int
) -> None:
    owner = await sign_up_and_login(client)
    org_id = await new_org(client, owner)
    r = await client.put(
        f"/v1/orgs/{org_id}/roles/r1", json={"permissions": permissions}, headers=bearer(owner)
    )
    assert r.status_code == status
    assert r.json()["error"]["code"] == "invalid_input"


async def test_no_escalation_and_an_owner_always_remains(client: httpx.AsyncClient) -> None:
    owner = await sign_up_and_login(client)
    org_id = await new_org(client, owner)
    h = bearer(owner)
    admin = await sign_up_and_login(client)
    r = await client.post(
        f"/v1/orgs/{org_id}/members", json={"email": admin["email"], "role": "admin"}, headers=h
    )
    admin_id = r.json()["user_id"]
    a = bearer(admin)
    other = await sign_up_and_login(client)
    # An admin cannot make owners, nor roles holding what admins lack.
    r = await client.post(
        f"/v1/orgs/{org_id}/members", json={"email": other["email"], "role": "owner"}, headers=a
    )
    assert r.status_code == 403
    r = await client.put(
        f"/v1/orgs/{org_id}/roles/deleter", json={"permissions": ["orgs:delete"]}, headers=a
    )
    assert r.status_code == 403
    r = await client.put(
        f"/v1/orgs/{org_id}/roles/owner", json={"permissions": ["orgs:read"]}, headers=h
    )
    assert r.status_code == 409
    # An admin cannot demote or remove the owner.
    me = (await client.get("/v1/users/me", headers=h)).json()["id"]
    r = await client.patch(f"/v1/orgs/{org_id}/members/{me}", json={"role": "viewer"}, headers=a)
    assert r.status_code == 403
    r = await client.delete(f"/v1/orgs/{org_id}/members/{me}", headers=a)
    assert r.status_code == 403
    # The last owner cannot leave or step down.
    r = await client.delete(f"/v1/orgs/{org_id}/members/{me}", headers=h)
    assert r.status_code == 409
    r = await client.patch(f"/v1/orgs/{org_id}/members/{me}", json={"role": "admin"}, headers=h)
    assert r.status_code == 409
    # With a second owner, the first may step down; roles in use cannot be deleted.
    r = await client.patch(
        f"/v1/orgs/{org_id}/members/{admin_id}", json={"role": "owner"}, headers=h
    )
    assert r.status_code == 200
    r = await client.patch(f"/v1/orgs/{org_id}/members/{me}", json={"role": "viewer"}, headers=h)
    assert r.status_code == 200
    r = await client.put(
        f"/v1/orgs/{org_id}/roles/reader", json={"permissions": ["orgs:read"]}, headers=a
    )
    assert r.status_code == 200
    await client.post(
        f"/v1/orgs/{org_id}/members", json={"email": other["email"], "role": "reader"}, headers=a
    )
    r = await client.delete(f"/v1/orgs/{org_id}/roles/reader", headers=a)
    assert r.status_code == 409
    roles = (await client.get(f"/v1/orgs/{org_id}/roles", headers=a)).json()
    assert {"owner", "admin", "editor", "viewer", "billing", "reader"} == {x["name"] for x in roles}
    orgs = (await client.get("/v1/orgs", headers=bearer(other))).json()
    assert [(o["id"], o["role"]) for o in orgs] == [(org_id, "reader")]
