"""SQL of alert notifications (table ``alert_notifications``, migration 0103)."""

from __future__ import annotations

import uuid
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
) -> bool:
    """Insert the occurrence, or update its status; False when the organisation is gone."""
    row_id = await conn.fetchval(
        """
        INSERT INTO alert_notifications AS n (org_id, tenant, alertname, severity,
            status, summary, description, fingerprint, starts_at, ends_at)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
        WHERE EXISTS (SELECT 1 FROM orgs WHERE id = $1)
        ON CONFLICT (org_id, fingerprint, starts_at) DO UPDATE
        SET status = EXCLUDED.status, ends_at = EXCLUDED.ends_at,
            summary = EXCLUDED.summary, description = EXCLUDED.description,
            updated_at = now()
        RETURNING n.id
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
    return row_id is not None


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
