"""SQL of billing: subscriptions, plan segments, usage events and invoices.

Usage ingestion is one multi-row statement per batch (``json_to_recordset`` of one
JSON parameter),
deduplicated by the primary key with ``ON CONFLICT DO NOTHING``; its status line says
how many rows were new, which is how duplicates are counted without a second query.
Ingestion holds a *shared* advisory lock of the organisation and finalization an
*exclusive* one, so a finalization waits for in-flight batches and every batch after
it sees the finalized invoice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from controlplane.billing.catalog import TenantStats
from controlplane.orgs.repository import OrgRow

FINALIZED_CHANNEL = "billing_invoice_finalized"
"""NOTIFY channel carrying the id of each invoice when it is finalized."""


def _lock_key(org_id: uuid.UUID) -> int:
    return org_id.int & 0x7FFF_FFFF_FFFF_FFFF


async def org(conn: asyncpg.Connection, org_id: uuid.UUID) -> OrgRow | None:
    r = await conn.fetchrow(
        "SELECT id, slug, name, plan, created_at FROM orgs WHERE id = $1", org_id
    )
    return OrgRow(r["id"], r["slug"], r["name"], r["plan"], r["created_at"]) if r else None


async def lock_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    """Serialise subscription changes of one organisation."""
    await conn.execute("SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE", org_id)


# -------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class SubscriptionRow:
    org_id: uuid.UUID
    currency: str
    started_at: datetime
    cancel_at: datetime | None


@dataclass(frozen=True)
class SegmentRow:
    plan: str
    valid_from: datetime
    valid_to: datetime | None


async def subscription(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, lock: bool = False
) -> SubscriptionRow | None:
    r = await conn.fetchrow(
        "SELECT org_id, currency, started_at, cancel_at FROM billing_subscriptions"  # noqa: S608
        " WHERE org_id = $1" + (" FOR UPDATE" if lock else ""),
        org_id,
    )
    return (
        SubscriptionRow(r["org_id"], r["currency"], r["started_at"], r["cancel_at"]) if r else None
    )


async def segments(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[SegmentRow]:
    rows = await conn.fetch(
        "SELECT plan, valid_from, valid_to FROM billing_plan_segments WHERE org_id = $1"
        " ORDER BY valid_from",
        org_id,
    )
    return [SegmentRow(r["plan"], r["valid_from"], r["valid_to"]) for r in rows]


async def upsert_subscription(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, currency: str, started_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO billing_subscriptions (org_id, currency, started_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (org_id) DO UPDATE SET currency = $2, started_at = $3, cancel_at = NULL,"
        " updated_at = now()",
        org_id,
        currency,
        started_at,
    )


async def set_cancel_at(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, cancel_at: datetime | None
) -> None:
    await conn.execute(
        "UPDATE billing_subscriptions SET cancel_at = $2, updated_at = now() WHERE org_id = $1",
        org_id,
        cancel_at,
    )


async def open_segment(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, plan: str, valid_from: datetime
) -> None:
    await conn.execute(
        "INSERT INTO billing_plan_segments (org_id, plan, valid_from) VALUES ($1, $2, $3)",
        org_id,
        plan,
        valid_from,
    )


async def end_open_segment(conn: asyncpg.Connection, org_id: uuid.UUID, *, at: datetime) -> None:
    """End the open segment at ``at``; one that would be empty is removed instead."""
    await conn.execute(
        "DELETE FROM billing_plan_segments WHERE org_id = $1 AND valid_to IS NULL"
        " AND valid_from >= $2",
        org_id,
        at,
    )
    await conn.execute(
        "UPDATE billing_plan_segments SET valid_to = $2 WHERE org_id = $1 AND valid_to IS NULL",
        org_id,
        at,
    )


async def set_org_plan(conn: asyncpg.Connection, org_id: uuid.UUID, *, plan: str) -> None:
    """Keep ``orgs.plan`` (what tenant limits are checked against) on the subscribed plan."""
    await conn.execute("UPDATE orgs SET plan = $2 WHERE id = $1", org_id, plan)


# ---------------------------------------------------------------------------------- usage


async def lock_usage_shared(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", _lock_key(org_id))


async def lock_usage_exclusive(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(org_id))


async def finalized_periods(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, starts: list[datetime]
) -> set[datetime]:
    rows = await conn.fetch(
        "SELECT period_start FROM billing_invoices WHERE org_id = $1"
        " AND period_start = ANY($2::timestamptz[]) AND status = 'finalized'",
        org_id,
        starts,
    )
    return {r["period_start"] for r in rows}


async def insert_usage(conn: asyncpg.Connection, *, org_id: uuid.UUID, events_json: str) -> int:
    """Insert a batch in one statement; return how many events were new.

    ``events_json`` is a JSON array of usage events as the API receives them
    (``idempotency_key``, ``metric``, ``tenant``, ``quantity``, ``timestamp``), in the
    order rows should be locked. One
    text parameter that PostgreSQL expands in C: binding five arrays instead costs
    asyncpg several Python-level checks per element, the largest cost of a batch.
    """
    status = await conn.execute(
        "INSERT INTO usage_events (org_id, idempotency_key, metric, tenant, quantity,"
        " occurred_at) SELECT $1, x.idempotency_key, x.metric, x.tenant, x.quantity,"
        ' x."timestamp" FROM json_to_recordset($2::json) AS x (idempotency_key text,'
        ' metric text, tenant text, quantity int8, "timestamp" timestamptz)'
        " ON CONFLICT (org_id, idempotency_key) DO NOTHING",
        org_id,
        events_json,
    )
    return int(str(status).split()[-1])


async def usage_stats(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, start: datetime, end: datetime
) -> dict[str, list[TenantStats]]:
    """Per metric, per tenant: sum, max and count of the events in ``[start, end)``."""
    rows = await conn.fetch(
        "SELECT metric, tenant, sum(quantity)::int8 AS total, max(quantity) AS peak,"
        " count(*) AS n FROM usage_events WHERE org_id = $1 AND occurred_at >= $2"
        " AND occurred_at < $3 GROUP BY metric, tenant ORDER BY metric, tenant",
        org_id,
        start,
        end,
    )
    out: dict[str, list[TenantStats]] = {}
    for r in rows:
        out.setdefault(r["metric"], []).append(
            TenantStats(r["tenant"], int(r["total"]), int(r["peak"]), int(r["n"]))
        )
    return out


async def events_by_org(
    conn: asyncpg.Connection, *, metric: str, start: datetime, end: datetime
) -> list[tuple[uuid.UUID, str, int]]:
    """(organisation, its plan, its total of ``metric``) for ``[start, end)``, for the
    organisations that have any."""
    rows = await conn.fetch(
        "SELECT o.id, o.plan, sum(u.quantity)::int8 AS total FROM usage_events u"
        " JOIN orgs o ON o.id = u.org_id WHERE u.metric = $1 AND u.occurred_at >= $2"
        " AND u.occurred_at < $3 GROUP BY o.id, o.plan",
        metric,
        start,
        end,
    )
    return [(r["id"], r["plan"], int(r["total"])) for r in rows]


# ------------------------------------------------------------------------------- invoices


async def orgs_to_close(
    conn: asyncpg.Connection, *, start: datetime, end: datetime
) -> list[OrgRow]:
    """Organisations subscribed at some moment of ``[start, end)`` whose invoice of
    that period is not finalized yet."""
    rows = await conn.fetch(
        "SELECT o.id, o.slug, o.name, o.plan, o.created_at FROM orgs o WHERE EXISTS ("
        " SELECT 1 FROM billing_plan_segments s WHERE s.org_id = o.id AND s.valid_from < $2"
        " AND (s.valid_to IS NULL OR s.valid_to > $1)) AND NOT EXISTS ("
        " SELECT 1 FROM billing_invoices i WHERE i.org_id = o.id AND i.period_start = $1"
        " AND i.status = 'finalized') ORDER BY o.slug",
        start,
        end,
    )
    return [OrgRow(r["id"], r["slug"], r["name"], r["plan"], r["created_at"]) for r in rows]


@dataclass(frozen=True)
class InvoiceRow:
    id: uuid.UUID
    org_id: uuid.UUID
    period_start: datetime
    period_end: datetime
    status: str
    number: str | None
    currency: str
    total: int
    lines: list[dict[str, Any]]
    created_at: datetime
    finalized_at: datetime | None


_COLS = (
    "id, org_id, period_start, period_end, status, number, currency, total, lines,"
    " created_at, finalized_at"
)


def _invoice(r: asyncpg.Record) -> InvoiceRow:
    return InvoiceRow(
        r["id"],
        r["org_id"],
        r["period_start"],
        r["period_end"],
        r["status"],
        r["number"],
        r["currency"],
        int(r["total"]),
        json.loads(r["lines"]),
        r["created_at"],
        r["finalized_at"],
    )


async def save_draft(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    period_start: datetime,
    period_end: datetime,
    currency: str,
    total: int,
    lines: list[dict[str, Any]],
) -> InvoiceRow | None:
    """Create or refresh the draft of a period; None when that invoice is finalized."""
    r = await conn.fetchrow(
        "INSERT INTO billing_invoices (org_id, period_start, period_end, status, currency,"  # noqa: S608
        " total, lines) VALUES ($1, $2, $3, 'draft', $4, $5, $6::jsonb)"
        " ON CONFLICT (org_id, period_start) DO UPDATE SET currency = EXCLUDED.currency,"
        " total = EXCLUDED.total, lines = EXCLUDED.lines, updated_at = now()"
        f" WHERE billing_invoices.status = 'draft' RETURNING {_COLS}",
        org_id,
        period_start,
        period_end,
        currency,
        total,
        json.dumps(lines),
    )
    return _invoice(r) if r else None


async def invoice(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, invoice_id: uuid.UUID, lock: bool = False
) -> InvoiceRow | None:
    r = await conn.fetchrow(
        f"SELECT {_COLS} FROM billing_invoices WHERE id = $1 AND org_id = $2"  # noqa: S608
        + (" FOR UPDATE" if lock else ""),
        invoice_id,
        org_id,
    )
    return _invoice(r) if r else None


async def invoice_of_period(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, period_start: datetime
) -> InvoiceRow | None:
    r = await conn.fetchrow(
        f"SELECT {_COLS} FROM billing_invoices WHERE org_id = $1 AND period_start = $2",  # noqa: S608
        org_id,
        period_start,
    )
    return _invoice(r) if r else None


async def invoices(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[InvoiceRow]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM billing_invoices WHERE org_id = $1"  # noqa: S608
        " ORDER BY period_start DESC",
        org_id,
    )
    return [_invoice(r) for r in rows]


async def finalize(
    conn: asyncpg.Connection,
    *,
    invoice_id: uuid.UUID,
    number: str,
    total: int,
    lines: list[dict[str, Any]],
) -> InvoiceRow:
    """Freeze a draft with its final lines, and notify listeners after commit."""
    r = await conn.fetchrow(
        "UPDATE billing_invoices SET status = 'finalized', number = $2, total = $3,"  # noqa: S608
        " lines = $4::jsonb, finalized_at = now(), updated_at = now()"
        f" WHERE id = $1 AND status = 'draft' RETURNING {_COLS}",
        invoice_id,
        number,
        total,
        json.dumps(lines),
    )
    assert r is not None, "finalize is called on a locked draft"
    await conn.execute("SELECT pg_notify($1, $2)", FINALIZED_CHANNEL, str(invoice_id))
    return _invoice(r)
