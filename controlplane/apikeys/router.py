"""HTTP routes of API keys: /v1/orgs/{org_id}/tenants/{tenant}/apikeys."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from controlplane.apikeys import service
from controlplane.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from controlplane.context import OrgAccess
from controlplane.deps import Conn, Info, State
from controlplane.errors import NotFound
from controlplane.internal import InternalService
from controlplane.paths import NamePath
from controlplane.rbac.dependencies import OrgPermission
from controlplane.tenants import service as tenants
from tenantry import internal_api
from tenantry.internal_api import Introspection, IntrospectRequest

router = APIRouter(prefix="/v1/orgs/{org_id}/tenants/{tenant}/apikeys", tags=["apikeys"])
internal_router = APIRouter(tags=["internal"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    access: Annotated[OrgAccess, Depends(OrgPermission("apikeys:manage", scope="tenant"))],
    tenant: NamePath,
    body: ApiKeyCreate,
    conn: Conn,
    state: State,
    info: Info,
) -> ApiKeyCreated:
    if not await tenants.exists(state.kube, access, tenant):
        raise NotFound("tenant not found")
    return await service.create(conn, access, tenant=tenant, body=body, info=info)


@router.get("")
async def list_api_keys(
    access: Annotated[OrgAccess, Depends(OrgPermission("apikeys:read", scope="tenant"))],
    tenant: NamePath,
    conn: Conn,
    state: State,
) -> list[ApiKeyOut]:
    if not await tenants.exists(state.kube, access, tenant):
        raise NotFound("tenant not found")
    return await service.list_keys(conn, access, tenant)


@router.delete("/{key_id}")
async def revoke_api_key(
    access: Annotated[OrgAccess, Depends(OrgPermission("apikeys:manage", scope="tenant"))],
    tenant: NamePath,
    key_id: uuid.UUID,
    conn: Conn,
    info: Info,
) -> ApiKeyOut:
    return await service.revoke(conn, access, tenant=tenant, key_id=key_id, info=info)


@internal_router.post(
    internal_api.INTROSPECT_PATH,
    dependencies=[Depends(InternalService("internal:apikeys.introspect"))],
)
async def introspect_api_key(body: IntrospectRequest, conn: Conn) -> Introspection:
    """For ingestion pods: what a presented key is (``active`` false when unusable)."""
    return await service.introspect(conn, body.key)
