"""Rules of the users domain: reading and editing one's own profile."""

from __future__ import annotations

import uuid

import asyncpg

from controlplane.audit import service as audit
from controlplane.context import RequestInfo
from controlplane.errors import NotFound
from controlplane.users import repository
from controlplane.users.schemas import UserOut, UserUpdate


async def me(conn: asyncpg.Connection, user_id: uuid.UUID) -> UserOut:
    row = await repository.by_id(conn, user_id)
    if row is None:
        raise NotFound("user not found")
    return UserOut(id=row.id, email=row.email, name=row.name, created_at=row.created_at)


async def update_me(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, change: UserUpdate, info: RequestInfo
) -> UserOut:
    await repository.update_name(conn, user_id, change.name)
    await audit.record(
        conn,
        org_id=None,
        actor=str(user_id),
        action="user.update",
        target=f"user/{user_id}",
        info=info,
    )
    return await me(conn, user_id)
