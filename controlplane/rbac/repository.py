"""SQL of custom roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class RoleRow:
    name: str
    description: str
    permissions: list[str]


async def custom_role(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> RoleRow | None:
    r = await conn.fetchrow(
        "SELECT name, description, permissions FROM org_roles WHERE org_id = $1 AND name = $2",
        org_id,
        name,
    )
    return RoleRow(r["name"], r["description"], list(r["permissions"])) if r else None


async def custom_roles(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[RoleRow]:
    rows = await conn.fetch(
        "SELECT name, description, permissions FROM org_roles WHERE org_id = $1 ORDER BY name",
        org_id,
    )
    return [RoleRow(r["name"], r["description"], list(r["permissions"])) for r in rows]


async def upsert(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    name: str,
    description: str,
    permissions: list[str],
) -> None:
    await conn.execute(
        "INSERT INTO org_roles (org_id, name, description, permissions) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (org_id, name) DO UPDATE SET description = $3, permissions = $4",
        org_id,
        name,
        description,
        permissions,
    )


async def in_use(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM memberships WHERE org_id = $1 AND role = $2)",
            org_id,
            name,
        )
    )


async def delete(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> bool:
    status = await conn.execute(
        "DELETE FROM org_roles WHERE org_id = $1 AND name = $2", org_id, name
    )
    return str(status).endswith(" 1")
