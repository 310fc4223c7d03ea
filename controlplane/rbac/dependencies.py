"""Permission declarations: every route depends on exactly one of these.

``Public`` (no identity), ``Authenticated`` (any signed-in user; for routes outside an
organisation) and ``OrgPermission`` (a member holding a ``resource:action`` grant,
optionally on the tenant or dashboard named in the path). They share the ``Declared``
base so a test can walk ``app.routes`` and fail on any route that declares nothing.

Non-members of an organisation get 404, exactly like a missing organisation, so ids of
other organisations' objects reveal nothing. Members without the grant get 403.
Membership, role and grants come from ``AccessCache`` (access_cache.py) when it knows
them, else from one read of their own: the check takes no part in the route's
transaction, and an authorised read from the tenant mirror touches no database.
What they hand the route (``Principal``, ``OrgAccess``) are plain values of
``context.py``, which services take without importing anything of the web layer.

During a Redis or PostgreSQL outage a read (GET, HEAD) may be authorised on what the
session and access caches confirmed within their ``max_age``; a write never is (the
bounded-staleness policy of ``outages.py``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane import db, outages
from controlplane.context import Membership, OrgAccess, Principal
from controlplane.deps import app_state, record_note
from controlplane.errors import AuditNote, Forbidden, NotFound, Unauthenticated
from controlplane.orgs import repository as orgs
from controlplane.rbac import permissions, repository

_bearer = HTTPBearer(auto_error=False, description="JWT access token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class Declared:
    """Base of every permission declaration (what the route-coverage test looks for)."""

    permission: str


class Public(Declared):
    def __init__(self, reason: str) -> None:
        self.permission = "public"
        self.reason = reason

    async def __call__(self) -> None:
        return None


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    state = app_state(request)
    claims = await state.auth.keys.verify(credentials.credentials)
    stale_ok = request.method in outages.SAFE_METHODS
    if not await state.auth.sessions.family_active(claims.sid, stale_ok=stale_ok):
        raise Unauthenticated("session has been revoked; sign in again")
    request.state.actor = str(claims.sub)
    return Principal(user_id=claims.sub, session=claims.sid, client_id=claims.client_id)


class Authenticated(Declared):
    def __init__(self, permission: str) -> None:
        self.permission = permission

    async def __call__(self, request: Request, credentials: Bearer) -> Principal:
        return await authenticate(request, credentials)


async def load_membership(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    found = await orgs.membership(conn, org_id, user_id)
    if found is None:
        return None
    org, role = found
    custom: dict[str, list[str]] = {}
    if role not in permissions.BUILTIN_ROLES:
        row = await repository.custom_role(conn, org_id, role)
        custom[role] = row.permissions if row else []
    return Membership(org, role, permissions.role_grants(role, custom))


async def load_access(request: Request, *, org_id: uuid.UUID, principal: Principal) -> OrgAccess:
    """The caller's access to ``org_id``, from the access cache or the database (a
    connection of its own for the read: the request's transaction, if any, is the
    route's business). 404 for non-members."""
    state = app_state(request)

    async def load() -> Membership | None:
        async with db.connection(state.pool) as conn:
            return await load_membership(conn, org_id=org_id, user_id=principal.user_id)

    stale_ok = request.method in outages.SAFE_METHODS
    member = await state.access.get(org_id, principal.user_id, load, stale_ok=stale_ok)
    if member is None:
        raise NotFound("organisation not found")
    return OrgAccess(org=member.org, role=member.role, grants=member.grants, principal=principal)


class OrgPermission(Declared):
    """Require ``permission`` in the organisation ``{org_id}`` of the path.

    ``scope`` names the path parameter of the object the action targets ("tenant" or
    "dashboard"); ``"listing"`` accepts a grant on any object (the route filters).
    """

    def __init__(
        self, permission: str, *, scope: Literal["tenant", "dashboard", "listing"] | None = None
    ) -> None:
        if permission not in permissions.PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        self.permission = permission
        self.scope = scope

    async def __call__(self, request: Request, org_id: uuid.UUID, credentials: Bearer) -> OrgAccess:
        principal = await authenticate(request, credentials)
        access = await load_access(request, org_id=org_id, principal=principal)
        if self.scope == "listing":
            allowed = access.grants.allows_somewhere(self.permission)
        elif self.scope is not None:
            name = str(request.path_params.get(self.scope, ""))
            allowed = access.allows(self.permission, scope=(self.scope, name))
        else:
            allowed = access.allows(self.permission)
        if not allowed:
            # Recorded here: the permission is checked before the route's transaction
            # (if it has one) begins, so no rollback path would record it.
            await record_note(
                request,
                AuditNote(
                    org_id=org_id,
                    actor=str(principal.user_id),
                    action="access.denied",
                    target=request.url.path[:300],
                    outcome="denied",
                    detail={"permission": self.permission, "method": request.method},
                ),
            )
            raise Forbidden(f"permission {self.permission} is required")
        request.state.audit_org = org_id
        return access
