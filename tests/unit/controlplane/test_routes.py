"""Every route declares its permission: a route without one is a bug this test finds."""

from __future__ import annotations

import re

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import ValidationError

from controlplane.app import ROUTERS, create_app
from controlplane.bodylimit import BodyLimitMiddleware, large_body_routes
from controlplane.rbac.dependencies import Declared, OrgPermission, Public
from controlplane.settings import Settings

# FastAPI's own documentation routes (not APIRoutes): the schema is public by design.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect"}


def _declared(dependant: Dependant) -> list[Declared]:
    found: list[Declared] = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, Declared):
            found.append(dep.call)
        found.extend(_declared(dep))
    return found


def routes() -> list[tuple[str, str, list[Declared]]]:
    app = create_app(Settings())
    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        path = str(ctx.path)
        if not isinstance(route, APIRoute):
            assert path in DOCS, f"unexpected non-API route {path}"
            continue
        for method in sorted(route.methods or ()):
            out.append((method, path, _declared(route.dependant)))
    return out


def test_every_route_declares_exactly_one_permission() -> None:
    missing = [f"{m} {p}" for m, p, d in routes() if len({type(x) for x in d}) != 1]
    assert not missing, f"routes without exactly one permission declaration: {missing}"
    assert len(routes()) > 30


def test_org_routes_use_org_permissions_and_public_routes_are_few() -> None:
    for method, path, declared in routes():
        if path.startswith("/v1/orgs/{org_id}"):
            assert all(isinstance(d, OrgPermission) for d in declared), (method, path)
    public = sorted(f"{m} {p}" for m, p, d in routes() if isinstance(d[0], Public))
    assert public == [
        "GET /.well-known/jwks.json",
        "GET /healthz",
        "GET /readyz",
        "POST /v1/auth/login",
        "POST /v1/auth/refresh",
        "POST /v1/auth/signup",
        "POST /v1/oauth/authorize",
        "POST /v1/oauth/token",
    ]


def test_router_order_cannot_change_which_route_answers() -> None:
    """The routers are included hot paths first (app.ROUTERS; matching is linear).
    That is only safe while no concrete path and method is matched by routes of two
    routers: each route's template, filled in, must match no other router's route.
    (Within one router the declaration order decides, e.g. ``invoices/upcoming``
    before ``invoices/{invoice_id}``, and including routers does not change it.)"""

    def pattern(path: str) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")

    owned = [
        (index, method, route.path)
        for index, router in enumerate(ROUTERS)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    ]
    assert len(owned) > 40
    for index, method, path in owned:
        concrete = re.sub(r"\{[^}]+\}", "x0", path)
        others = [
            p for i, m, p in owned if i != index and m == method and pattern(p).match(concrete)
        ]
        assert not others, f"{method} {concrete}: {path} and {others} in different routers"


def test_only_the_routes_whose_bodies_need_it_take_the_larger_body_limit() -> None:
    """Dashboards (up to 50 panels of 20 000 characters of SQL) and usage batches (5 000
    events, from members or from the ingestion pods) can be valid beyond the default
    limit; no other route takes more."""
    app = create_app(Settings())
    assert sorted(large_body_routes(app.routes)) == [
        ("/internal/v1/orgs/{org_id}/usage", frozenset({"POST"})),
        ("/v1/orgs/{org_id}/dashboards", frozenset({"POST"})),
        ("/v1/orgs/{org_id}/dashboards/{dashboard}", frozenset({"PUT"})),
        ("/v1/orgs/{org_id}/usage", frozenset({"POST"})),
    ]
    limits = BodyLimitMiddleware(app, default=1000, large=5000, routes=app.routes)
    org = "/v1/orgs/0b8c5a52-1c8e-4a53-9e1f-7f4a7c9d2e10"
    assert limits.limit("POST", f"{org}/dashboards") == 5000
    assert limits.limit("PUT", f"{org}/dashboards/sales") == 5000
    assert limits.limit("POST", f"{org}/usage") == 5000
    assert limits.limit("POST", "/internal" + f"{org}/usage") == 5000
    assert limits.limit("POST", f"{org}/tenants") == 1000
    assert limits.limit("PUT", f"{org}/dashboards") == 1000  # no such route: the default
    assert limits.limit("POST", f"{org}/dashboards/sales/more") == 1000
    assert limits.limit("POST", "/v1/auth/signup") == 1000
    openapi = app.openapi()["paths"]
    assert openapi["/v1/orgs/{org_id}/usage"]["post"]["x-body-limit"] == "large"
    assert "x-body-limit" not in openapi["/v1/orgs/{org_id}/tenants"]["post"]


def test_the_larger_body_limit_is_not_smaller_than_the_default() -> None:
    with pytest.raises(ValidationError, match="MAX_LARGE_BODY_BYTES"):
        Settings(max_body_bytes=8 * 1024 * 1024, max_large_body_bytes=4 * 1024 * 1024)
