"""HTTP routes of dashboards: /v1/orgs/{org_id}/dashboards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from controlplane.billing import service as billing
from controlplane.billing.access import billing_settings
from controlplane.bodylimit import LARGE_BODY
from controlplane.context import OrgAccess
from controlplane.dashboards import service
from controlplane.dashboards.schemas import (
    DashboardCreate,
    DashboardOut,
    DashboardUpdate,
    PanelData,
)
from controlplane.deps import Conn, Info, State
from controlplane.errors import InvalidInput
from controlplane.paths import NamePath
from controlplane.rbac.dependencies import OrgPermission
from tenantry.api.dashboard import EARLIEST, LATEST, LOOKBACK_YEARS, TIME_PATTERN

router = APIRouter(prefix="/v1/orgs/{org_id}/dashboards", tags=["dashboards"])

PanelPath = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_]{0,62}$")]
TimeQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=TIME_PATTERN,
        description="now, now-<n><s|m|h|d|w> (at most "
        f"{LOOKBACK_YEARS} years back) or an RFC 3339 time with zone, from "
        f"{EARLIEST:%Y-%m-%dT%H:%M:%SZ} to {LATEST:%Y-%m-%dT%H:%M:%SZ}; "
        "default: the dashboard's timeRange.",
    ),
]
_VAR_DOC = (
    "Variables as var.<name>=<value>; values bound as query parameters. A value that is "
    "not acceptable is a 422 whose message starts with the parameter's name."
)


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=LARGE_BODY)
async def create_dashboard(
    access: Annotated[OrgAccess, Depends(OrgPermission("dashboards:write"))],
    body: DashboardCreate,
    conn: Conn,
    state: State,
    info: Info,
) -> DashboardOut:
    return await service.create(conn, state.kube, access, body, info)


@router.get("")
async def list_dashboards(
    access: Annotated[OrgAccess, Depends(OrgPermission("dashboards:read", scope="listing"))],
    state: State,
) -> list[DashboardOut]:
    return await service.list_visible(state.kube, access)


@router.get("/{dashboard}")
async def get_dashboard(
    access: Annotated[OrgAccess, Depends(OrgPermission("dashboards:read", scope="dashboard"))],
    dashboard: NamePath,
    state: State,
) -> DashboardOut:
    return await service.get(state.kube, access, dashboard)


@router.put("/{dashboard}", openapi_extra=LARGE_BODY)
async def update_dashboard(
    access: Annotated[OrgAccess, Depends(OrgPermission("dashboards:write", scope="dashboard"))],
    dashboard: NamePath,
    body: DashboardUpdate,
    conn: Conn,
    state: State,
    info: Info,
) -> DashboardOut:
    return await service.update(conn, state.kube, access, name=dashboard, body=body, info=info)


@router.delete("/{dashboard}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dashboard(
    access: Annotated[OrgAccess, Depends(OrgPermission("dashboards:write", scope="dashboard"))],
    dashboard: NamePath,
    conn: Conn,
    state: State,
    info: Info,
) -> Response:
    await service.delete(conn, state.kube, access, name=dashboard, info=info)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _query(request: Request, time_from: str | None, time_to: str | None) -> dict[str, str]:
    """from, to and var.<name> from the query string; anything else, or a repeated
    key, is a 422 (strict input: a typo must not silently fall back to a default)."""
    items = request.query_params.multi_items()
    keys = [k for k, _ in items]
    unknown = sorted({k for k in keys if k not in ("from", "to") and not k.startswith("var.")})
    if unknown:
        raise InvalidInput(f"unknown query parameters: {', '.join(unknown)}")
    if len(set(keys)) != len(keys):
        raise InvalidInput("a query parameter is repeated")
    found = {k: v for k, v in items if k.startswith("var.")}
    found.update({k: v for k, v in (("from", time_from), ("to", time_to)) if v is not None})
    return found


async def _panel(
    access: Annotated[OrgAccess, Depends(OrgPermission("dashboards:read", scope="dashboard"))],
    dashboard: NamePath,
    panel: PanelPath,
    request: Request,
    state: State,
    conn: Conn,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
) -> service.PanelResult:
    """The panel's data, for both panel routes (their one set of parameters and their
    permission); a query that ran on ClickHouse (no cache hit) is metered."""
    await state.limiter.panel_query(str(access.org.id))
    result = await service.panel_data(
        state.kube,
        state.redis,
        state.settings,
        access,
        dashboard=dashboard,
        panel_id=panel,
        query=_query(request, from_, to),
    )
    if not result.data.cached:
        await billing.meter_dashboard_query(
            conn,
            access,
            tenant=result.tenant,
            policy=billing_settings(request).policy(),
            now=datetime.now(UTC),
        )
    return result


Panel = Annotated[service.PanelResult, Depends(_panel)]


@router.get("/{dashboard}/panels/{panel}/data", description=_VAR_DOC)
async def get_panel_data(result: Panel) -> PanelData:
    return result.data


@router.get(
    "/{dashboard}/panels/{panel}/chart.svg",
    description=_VAR_DOC,
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def get_panel_chart(result: Panel) -> Response:
    svg = service.panel_chart(result.data, title=result.title, visualization=result.visualization)
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
