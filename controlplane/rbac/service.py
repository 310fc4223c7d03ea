"""Rules of custom roles: valid grants only, no shadowing of built-in roles, no
escalation (a role may hold only what its author holds), no deleting a role in use."""

from __future__ import annotations

import asyncpg

from controlplane.audit import service as audit
from controlplane.context import OrgAccess, RequestInfo
from controlplane.errors import Conflict, Forbidden, InvalidInput, NotFound
from controlplane.rbac import permissions, repository
from controlplane.rbac.schemas import RoleOut, RolePut


async def list_roles(conn: asyncpg.Connection, access: OrgAccess) -> list[RoleOut]:
    builtin = [
        RoleOut(name=name, builtin=True, description=f"built-in {name} role", permissions=list(g))
        for name, g in permissions.BUILTIN_ROLES.items()
    ]
    custom = [
        RoleOut(name=r.name, builtin=False, description=r.description, permissions=r.permissions)
        for r in await repository.custom_roles(conn, access.org.id)
    ]
    return builtin + custom


async def put_role(
    conn: asyncpg.Connection, access: OrgAccess, *, name: str, body: RolePut, info: RequestInfo
) -> RoleOut:
    if name in permissions.BUILTIN_ROLES:
        raise Conflict(f"{name!r} is a built-in role and cannot be redefined")
    try:
        grants = permissions.Grants.of(body.permissions)
    except permissions.InvalidGrant as exc:
        raise InvalidInput(str(exc)) from None
    if not access.grants.includes(grants):
        raise Forbidden("a role cannot hold permissions that you do not have")
    normalized = sorted({str(g) for g in grants.items})
    await repository.upsert(
        conn,
        org_id=access.org.id,
        name=name,
        description=body.description,
        permissions=normalized,
    )
    await audit.record_as(
        conn,
        access,
        action="role.put",
        target=f"role/{name}",
        info=info,
        detail={"permissions": ",".join(normalized)},
    )
    return RoleOut(name=name, builtin=False, description=body.description, permissions=normalized)


async def delete_role(
    conn: asyncpg.Connection, access: OrgAccess, *, name: str, info: RequestInfo
) -> None:
    if name in permissions.BUILTIN_ROLES:
        raise Conflict(f"{name!r} is a built-in role and cannot be deleted")
    if await repository.in_use(conn, access.org.id, name):
        raise Conflict(f"role {name!r} is assigned to members; reassign them first")
    if not await repository.delete(conn, access.org.id, name):
        raise NotFound("role not found")
    await audit.record_as(
        conn,
        access,
        action="role.delete",
        target=f"role/{name}",
        info=info,
    )
