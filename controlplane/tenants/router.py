"""HTTP routes of tenants: /v1/orgs/{org_id}/tenants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from controlplane.context import OrgAccess
from controlplane.deps import Conn, Info, State
from controlplane.paths import NamePath
from controlplane.rbac.dependencies import OrgPermission
from controlplane.tenants import service
from controlplane.tenants.schemas import (
    RestoreCreate,
    RestoreOut,
    TenantCreate,
    TenantOut,
    TenantUpdate,
)

router = APIRouter(prefix="/v1/orgs/{org_id}/tenants", tags=["tenants"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_tenant(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:create"))],
    body: TenantCreate,
    conn: Conn,
    state: State,
    info: Info,
) -> TenantOut:
    return await service.create(conn, state.kube, access, body, info)


@router.get("")
async def list_tenants(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:read", scope="listing"))],
    state: State,
) -> list[TenantOut]:
    return await service.list_visible(state.kube, access)


@router.get("/{tenant}")
async def get_tenant(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:read", scope="tenant"))],
    tenant: NamePath,
    state: State,
) -> TenantOut:
    return await service.get(state.kube, access, tenant)


@router.put("/{tenant}")
async def update_tenant(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:update", scope="tenant"))],
    tenant: NamePath,
    body: TenantUpdate,
    conn: Conn,
    state: State,
    info: Info,
) -> TenantOut:
    return await service.update(conn, state.kube, access, name=tenant, body=body, info=info)


@router.delete("/{tenant}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tenant(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:delete", scope="tenant"))],
    tenant: NamePath,
    conn: Conn,
    state: State,
    info: Info,
) -> Response:
    await service.delete(conn, state.kube, access, name=tenant, info=info)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{tenant}/restores", status_code=status.HTTP_201_CREATED)
async def restore_tenant(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:restore", scope="tenant"))],
    tenant: NamePath,
    body: RestoreCreate,
    conn: Conn,
    state: State,
    info: Info,
) -> RestoreOut:
    """Restore one of the tenant's backups into it (``overwrite``: replace its rows)."""
    return await service.restore(conn, state.kube, access, name=tenant, body=body, info=info)


@router.get("/{tenant}/restores")
async def list_restores(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:read", scope="tenant"))],
    tenant: NamePath,
    state: State,
) -> list[RestoreOut]:
    """The tenant's restores, newest first, with the operator's status."""
    return await service.restores_of(state.kube, access, tenant)
