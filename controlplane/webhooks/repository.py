"""SQL of webhooks and their outbox (migration 0104): the only place with SQL here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


async def insert(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    url: str,
    event_types: list[str],
    sealed_secret: str,
    created_by: uuid.UUID,
) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO webhooks (id, org_id, url, event_types, secret, created_by)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING id, url, event_types, enabled, disabled_reason, created_at,
            secret_rotated_at
        """,
        uuid.uuid4(),
        org_id,
        url,
        event_types,
        sealed_secret,
        created_by,
    )


async def of_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT id, url, event_types, enabled, disabled_reason, created_at,
                secret_rotated_at
            FROM webhooks WHERE org_id = $1 ORDER BY created_at, id
            """,
            org_id,
        )
    )


async def get(conn: asyncpg.Connection, org_id: uuid.UUID, webhook_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        """
        SELECT id, url, event_types, enabled, disabled_reason, created_at, secret_rotated_at
        FROM webhooks WHERE org_id = $1 AND id = $2
        """,
        org_id,
        webhook_id,
    )


async def delete(conn: asyncpg.Connection, org_id: uuid.UUID, webhook_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        """
        DELETE FROM webhooks WHERE org_id = $1 AND id = $2
        RETURNING id, url, event_types, enabled, disabled_reason, created_at,
            secret_rotated_at
        """,
        org_id,
        webhook_id,
    )


async def set_secret(
    conn: asyncpg.Connection, org_id: uuid.UUID, webhook_id: uuid.UUID, sealed_secret: str
) -> Any:
    return await conn.fetchrow(
        """
        UPDATE webhooks SET secret = $3, secret_rotated_at = now()
        WHERE org_id = $1 AND id = $2
        RETURNING id, url, event_types, enabled, disabled_reason, created_at,
            secret_rotated_at
        """,
        org_id,
        webhook_id,
        sealed_secret,
    )


async def enable(conn: asyncpg.Connection, org_id: uuid.UUID, webhook_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        """
        UPDATE webhooks SET enabled = true, disabled_reason = NULL
        WHERE org_id = $1 AND id = $2
        RETURNING id, url, event_types, enabled, disabled_reason, created_at,
            secret_rotated_at
        """,
        org_id,
        webhook_id,
    )


async def disable(conn: asyncpg.Connection, webhook_id: uuid.UUID, reason: str) -> Any:
    """Disable an enabled webhook; its (org id, url), or None when it was not enabled."""
    return await conn.fetchrow(
        """
        UPDATE webhooks SET enabled = false, disabled_reason = $2
        WHERE id = $1 AND enabled RETURNING org_id, url
        """,
        webhook_id,
        reason,
    )


async def enqueue(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, event_type: str, body: str
) -> int:
    """One pending delivery per enabled webhook of the organisation that takes
    ``event_type``; returns how many."""
    rows = await conn.fetch(
        """
        INSERT INTO webhook_deliveries (msg_id, webhook_id, org_id, event_type, body)
        SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), id, org_id, $2, $3
        FROM webhooks
        WHERE org_id = $1 AND enabled
          AND (cardinality(event_types) = 0 OR $2 = ANY (event_types))
        RETURNING id
        """,
        org_id,
        event_type,
        body,
    )
    return len(rows)


@dataclass(frozen=True)
class Claimed:
    id: int
    msg_id: str
    body: str
    tries: int
    webhook_id: uuid.UUID
    org_id: uuid.UUID
    url: str
    sealed_secret: str


async def claim(conn: asyncpg.Connection, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of enabled webhooks. Rows another worker is
    claiming right now are skipped (SKIP LOCKED), rows leased and not finished are
    skipped until their lease passes (the worker that leased them died)."""
    rows = await conn.fetch(
        """
        UPDATE webhook_deliveries d
        SET lease_until = now() + make_interval(secs => $2)
        FROM webhooks w
        WHERE w.id = d.webhook_id AND d.id IN (
            SELECT d2.id FROM webhook_deliveries d2
            JOIN webhooks w2 ON w2.id = d2.webhook_id
            WHERE d2.state = 'pending' AND d2.next_attempt_at <= now()
              AND (d2.lease_until IS NULL OR d2.lease_until < now()) AND w2.enabled
            ORDER BY d2.next_attempt_at, d2.id
            LIMIT $1
            FOR UPDATE OF d2 SKIP LOCKED
        )
        RETURNING d.id, d.msg_id, d.body, d.tries, d.webhook_id, d.org_id, w.url,
                  w.secret AS sealed_secret
        """,
        limit,
        lease_seconds,
    )
    return [Claimed(**dict(r)) for r in rows]


async def record_attempt(
    conn: asyncpg.Connection,
    *,
    delivery_id: int,
    duration_ms: int,
    status_code: int | None,
    error: str | None,
    excerpt: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO webhook_attempts (delivery_id, duration_ms, status_code, error,
            response_excerpt)
        VALUES ($1, $2, $3, $4, $5)
        """,
        delivery_id,
        duration_ms,
        status_code,
        error,
        excerpt,
    )


async def finish(
    conn: asyncpg.Connection,
    delivery_id: int,
    *,
    state: str,
    tries: int,
    next_attempt_at: datetime | None = None,
) -> None:
    """Record the outcome of an attempt and release the lease."""
    await conn.execute(
        """
        UPDATE webhook_deliveries
        SET state = $2, tries = $3, lease_until = NULL,
            next_attempt_at = coalesce($4, next_attempt_at),
            delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
        WHERE id = $1
        """,
        delivery_id,
        state,
        tries,
        next_attempt_at,
    )


async def deliveries(
    conn: asyncpg.Connection, org_id: uuid.UUID, webhook_id: uuid.UUID, limit: int
) -> list[Any]:
    """The newest deliveries with their attempts (a JSON array), in one statement: one
    snapshot, so a delivery and its attempts always agree."""
    return list(
        await conn.fetch(
            """
            SELECT d.id, d.msg_id, d.event_type, d.state, d.tries, d.next_attempt_at,
                   d.created_at, d.delivered_at, d.body,
                   coalesce((
                       SELECT json_agg(json_build_object(
                           'attempted_at', a.attempted_at, 'duration_ms', a.duration_ms,
                           'status_code', a.status_code, 'error', a.error,
                           'response_excerpt', a.response_excerpt) ORDER BY a.id)
                       FROM webhook_attempts a WHERE a.delivery_id = d.id
                   ), '[]') AS attempts
            FROM webhook_deliveries d WHERE d.org_id = $1 AND d.webhook_id = $2
            ORDER BY d.id DESC LIMIT $3
            """,
            org_id,
            webhook_id,
            limit,
        )
    )


async def redeliver(
    conn: asyncpg.Connection, org_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: int
) -> Any:
    """Make a delivery pending again, due now, with a fresh round of tries."""
    return await conn.fetchrow(
        """
        UPDATE webhook_deliveries
        SET state = 'pending', tries = 0, next_attempt_at = now(), lease_until = NULL,
            delivered_at = NULL
        WHERE org_id = $1 AND webhook_id = $2 AND id = $3
        RETURNING id, msg_id
        """,
        org_id,
        webhook_id,
        delivery_id,
    )
