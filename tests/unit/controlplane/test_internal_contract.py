"""The control plane serves its internal API with the payload models the clients send
and read (``tenantry.internal_api``): the routes are found at the shared paths and
declare the shared models, so neither side can drift to a copy."""

from __future__ import annotations

from fastapi.routing import APIRoute, iter_route_contexts

from controlplane.app import create_app
from controlplane.settings import Settings
from tenantry import internal_api


def _routes() -> dict[tuple[str, str], APIRoute]:
    out = {}
    for ctx in iter_route_contexts(create_app(Settings()).routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            for method in route.methods or ():
                out[(method, str(ctx.path))] = route
    return out


def test_the_internal_routes_are_served_at_the_shared_paths_with_the_shared_models() -> None:
    routes = _routes()
    limits = routes[("GET", internal_api.limits_path("{org_id}"))]
    assert limits.response_model is internal_api.OrgLimitsOut

    introspect = routes[("POST", internal_api.INTROSPECT_PATH)]
    assert introspect.response_model is internal_api.Introspection
    assert introspect.body_field is not None
    assert introspect.body_field.field_info.annotation is internal_api.IntrospectRequest

    usage = routes[("POST", internal_api.usage_path("{org_id}"))]
    assert usage.response_model is internal_api.UsageResult
    # The batch is read from the raw bytes by a dependency; its documented body is the
    # shared model's schema.
    documented = (usage.openapi_extra or {})["requestBody"]["content"]["application/json"]
    assert documented["schema"]["title"] == internal_api.UsageBatch.__name__
    assert set(documented["schema"]["properties"]) == set(internal_api.UsageBatch.model_fields)
