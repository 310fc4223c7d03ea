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
