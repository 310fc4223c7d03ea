"""HTTP routes of dashboards: /v1/orgs/{org_id}/dashboards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from controlplane.dashboards import service
from controlplane.dashboards.schemas import DashboardCreate, DashboardOut, DashboardUpdate
from controlplane.deps import Conn, Info, State
from controlplane.rbac.dependencies import OrgAccess, OrgPermission
from controlplane.tenants.schemas import NamePath

router = APIRouter(prefix="/v1/orgs/{org_id}/dashboards", tags=["dashboards"])


@router.post("", status_code=status.HTTP_201_CREATED)
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


@router.put("/{dashboard}")
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
