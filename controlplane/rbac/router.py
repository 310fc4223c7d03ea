"""HTTP routes of roles: /v1/orgs/{org_id}/roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from controlplane.context import OrgAccess
from controlplane.deps import Conn, Info
from controlplane.orgs.schemas import ROLE_PATTERN
from controlplane.rbac import service
from controlplane.rbac.dependencies import OrgPermission
from controlplane.rbac.schemas import RoleOut, RolePut

router = APIRouter(prefix="/v1/orgs/{org_id}/roles", tags=["rbac"])

RoleName = Annotated[str, Path(pattern=ROLE_PATTERN)]


@router.get("")
async def list_roles(
    access: Annotated[OrgAccess, Depends(OrgPermission("roles:read"))], conn: Conn
) -> list[RoleOut]:
    return await service.list_roles(conn, access)


@router.put("/{role}")
async def put_role(
    access: Annotated[OrgAccess, Depends(OrgPermission("roles:manage"))],
    role: RoleName,
    body: RolePut,
    conn: Conn,
    info: Info,
) -> RoleOut:
    return await service.put_role(conn, access, name=role, body=body, info=info)


@router.delete("/{role}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(
    access: Annotated[OrgAccess, Depends(OrgPermission("roles:manage"))],
    role: RoleName,
    conn: Conn,
    info: Info,
) -> Response:
    await service.delete_role(conn, access, name=role, info=info)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
