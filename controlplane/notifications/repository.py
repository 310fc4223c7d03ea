"""SQL of alert notifications (table ``alert_notifications``, migration 0103)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from tenantry.internal_api import AlertmanagerAlert


async def record(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    tenant: str,
    alert: AlertmanagerAlert,
    ends_at: datetime | None,
) -> Recorded | None:
    """Insert the occurrence, or update its status; None when the organisation is gone."""
    row = await conn.fetchrow(
        """
        WITH before AS (
            SELECT status FROM alert_notifications
            WHERE org_id = $1 AND fingerprint = $8 AND starts_at = $9
        )
        INSERT INTO alert_notifications AS n (org_id, tenant, alertname, severity,
            status, summary, description, fingerprint, starts_at, ends_at)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
        WHERE EXISTS (SELECT 1 FROM orgs WHERE id = $1)
        ON CONFLICT (org_id, fingerprint, starts_at) DO UPDATE
        SET status = EXCLUDED.status, ends_at = EXCLUDED.ends_at,
            summary = EXCLUDED.summary, description = EXCLUDED.description,
            updated_at = now()
        RETURNING n.id, (SELECT status FROM before) AS previous
        """,
        org_id,
        tenant,
        alert.labels.get("alertname", ""),
        alert.labels.get("severity", ""),
        alert.status,
        alert.annotations.get("summary", ""),
        alert.annotations.get("description", ""),
        alert.fingerprint,
        alert.starts_at,
        ends_at,
    )
    if row is None:
        return None
    return Recorded(id=int(row["id"]), previous=row["previous"])


@dataclass(frozen=True)
class Recorded:
    id: int
    previous: str | None
    """The occurrence's status before this webhook (None: it is new)."""


async def record_notice(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    name: str,
    summary: str,
    description: str,
    key: str,
) -> int:
    """A notice about the organisation itself (no tenant), such as a disabled webhook."""
    return int(
        await conn.fetchval(
            """
            INSERT INTO alert_notifications (org_id, tenant, alertname, severity, status,
                summary, description, fingerprint, starts_at)
            VALUES ($1, '', $2, 'warning', 'firing', $3, $4, $5, now())
            RETURNING id
            """,
            org_id,
            name,
            summary,
            description,
            key,
        )
    )


async def record_notice_once(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    name: str,
    summary: str,
    description: str,
    key: str,
    at: datetime,
) -> int | None:
    """A notice recorded only the first time for (`key`, `at`); None on the later ones
    (the table's unique key makes racing callers agree)."""
    found = await conn.fetchval(
        """
        INSERT INTO alert_notifications (org_id, tenant, alertname, severity, status,
            summary, description, fingerprint, starts_at)
        VALUES ($1, '', $2, 'warning', 'firing', $3, $4, $5, $6)
        ON CONFLICT (org_id, fingerprint, starts_at) DO NOTHING
        RETURNING id
        """,
        org_id,
        name,
        summary,
        description,
        key,
        at,
    )
    return None if found is None else int(found)


async def newest(conn: asyncpg.Connection, org_id: uuid.UUID, limit: int) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT id, tenant, alertname, severity, status, summary, description,
                   starts_at, ends_at, received_at, updated_at
            FROM alert_notifications WHERE org_id = $1
            ORDER BY updated_at DESC, id DESC LIMIT $2
            """,
            org_id,
            limit,
        )
    )


async def enqueue_emails(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, subject: str, body: str
) -> int:
    """One pending e-mail per owner of the organisation; returns how many."""
    rows = await conn.fetch(
        """
        INSERT INTO notification_emails (org_id, recipient, subject, body)
        SELECT m.org_id, u.email, $2, $3
        FROM memberships m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 AND m.role = 'owner'
        RETURNING id
        """,
        org_id,
        subject,
        body,
    )
    return len(rows)


@dataclass(frozen=True)
class ClaimedEmail:
    id: int
    recipient: str
    subject: str
    body: str
    tries: int


async def claim_emails(
    conn: asyncpg.Connection, *, limit: int, lease_seconds: float
) -> list[ClaimedEmail]:
    """Lease up to ``limit`` due e-mails (SKIP LOCKED, as webhook deliveries are)."""
    rows = await conn.fetch(
        """
        UPDATE notification_emails
        SET lease_until = now() + make_interval(secs => $2)
        WHERE id IN (
            SELECT id FROM notification_emails
            WHERE state = 'pending' AND next_attempt_at <= now()
              AND (lease_until IS NULL OR lease_until < now())
            ORDER BY next_attempt_at, id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id, recipient, subject, body, tries
        """,
        limit,
        lease_seconds,
    )
    return [ClaimedEmail(**dict(r)) for r in rows]


async def finish_email(
    conn: asyncpg.Connection,
    email_id: int,
    *,
    state: str,
    tries: int,
    error: str | None,
    next_attempt_at: datetime | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE notification_emails
        SET state = $2, tries = $3, last_error = $4, lease_until = NULL,
            next_attempt_at = coalesce($5, next_attempt_at),
            sent_at = CASE WHEN $2 = 'sent' THEN now() END
        WHERE id = $1
        """,
        email_id,
        state,
        tries,
        error,
        next_attempt_at,
    )
