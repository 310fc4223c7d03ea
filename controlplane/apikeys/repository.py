"""SQL of API keys. Only the SHA-256 of a key is stored; lookups go by that digest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class KeyRow:
    id: uuid.UUID
    org_id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


_COLS = "id, org_id, tenant, name, prefix, scopes, created_at, expires_at, revoked_at, last_used_at"


def _row(r: asyncpg.Record) -> KeyRow:
    return KeyRow(
        r["id"],
        r["org_id"],
        r["tenant"],
        r["name"],
        r["prefix"],
        list(r["scopes"]),
        r["created_at"],
        r["expires_at"],
        r["revoked_at"],
        r["last_used_at"],
    )


async def insert(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    tenant: str,
    name: str,
    prefix: str,
    key_hash: bytes,
    scopes: list[str],
    created_by: uuid.UUID,
    expires_at: datetime | None,
) -> KeyRow:
    r = await conn.fetchrow(
        "INSERT INTO api_keys (org_id, tenant, name, prefix, key_hash, scopes, created_by,"  # noqa: S608
        f" expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLS}",
        org_id,
        tenant,
        name,
        prefix,
        key_hash,
        scopes,
        created_by,
        expires_at,
    )
    assert r is not None
    return _row(r)


async def of_tenant(conn: asyncpg.Connection, org_id: uuid.UUID, tenant: str) -> list[KeyRow]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM api_keys WHERE org_id = $1 AND tenant = $2"  # noqa: S608
        " ORDER BY created_at",
        org_id,
        tenant,
    )
    return [_row(r) for r in rows]


async def revoke(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, tenant: str, key_id: uuid.UUID
) -> KeyRow | None:
    r = await conn.fetchrow(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"  # noqa: S608
        f" WHERE id = $1 AND org_id = $2 AND tenant = $3 RETURNING {_COLS}",
        key_id,
        org_id,
        tenant,
    )
    return _row(r) if r else None


async def revoke_tenant(conn: asyncpg.Connection, org_id: uuid.UUID, tenant: str) -> int:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE org_id = $1 AND tenant = $2 AND revoked_at IS NULL",
        org_id,
        tenant,
    )
    return int(str(status).split()[-1])


async def by_hash(conn: asyncpg.Connection, key_hash: bytes) -> KeyRow | None:
    r = await conn.fetchrow(
        f"UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1 RETURNING {_COLS}",  # noqa: S608
        key_hash,
    )
    return _row(r) if r else None


async def introspect(conn: asyncpg.Connection, key_hash: bytes) -> tuple[KeyRow, str] | None:
    """The key with this digest and its organisation's slug (the Tenant CR prefix).

    ``last_used_at`` is written at most once a minute per key: introspection is the
    ingestion hot path, and a row update per request would be most of its cost.
    """
    r = await conn.fetchrow(
        f"SELECT {', '.join('k.' + c.strip() for c in _COLS.split(','))}, o.slug"  # noqa: S608
        " FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE k.key_hash = $1",
        key_hash,
    )
    if r is None:
        return None
    await conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE id = $1"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')",
        r["id"],
    )
    return _row(r), str(r["slug"])
