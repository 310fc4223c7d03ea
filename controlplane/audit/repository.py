"""SQL of the audit trail: appending under the chain-head lock, reading, filtering."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import asyncpg

from controlplane.audit.chain import GENESIS, Event


async def lock_head(conn: asyncpg.Connection, chain: str) -> tuple[int, str]:
    """The head of ``chain``, row-locked until the transaction ends."""
    await conn.execute(
        "INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 0, $2) "
        "ON CONFLICT (chain) DO NOTHING",
        chain,
        GENESIS,
    )
    r = await conn.fetchrow("SELECT seq, hash FROM audit_heads WHERE chain = $1 FOR UPDATE", chain)
    assert r is not None
    return int(r["seq"]), str(r["hash"])


async def append(conn: asyncpg.Connection, ev: Event) -> None:
    await conn.execute(
        "INSERT INTO audit_events (chain, seq, org_id, at, actor, action, target, outcome, ip,"
        " user_agent, request_id, detail, prev_hash, hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14)",
        ev.chain,
        ev.seq,
        uuid.UUID(ev.org_id) if ev.org_id else None,
        ev.at,
        ev.actor,
        ev.action,
        ev.target,
        ev.outcome,
        ev.ip,
        ev.user_agent,
        ev.request_id,
        json.dumps(ev.detail),
        ev.prev_hash,
        ev.hash,
    )
    await conn.execute(
        "UPDATE audit_heads SET seq = $2, hash = $3 WHERE chain = $1", ev.chain, ev.seq, ev.hash
    )


def _event(r: asyncpg.Record) -> Event:
    return Event(
        chain=r["chain"],
        seq=int(r["seq"]),
        org_id=str(r["org_id"]) if r["org_id"] else None,
        at=r["at"],
        actor=r["actor"],
        action=r["action"],
        target=r["target"],
        outcome=r["outcome"],
        ip=r["ip"],
        user_agent=r["user_agent"],
        request_id=r["request_id"],
        detail=json.loads(r["detail"]),
        prev_hash=r["prev_hash"],
        hash=r["hash"],
    )


_COLS = (
    "chain, seq, org_id, at, actor, action, target, outcome, ip, user_agent, request_id,"
    " detail, prev_hash, hash"
)


async def chains(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT chain FROM audit_heads UNION SELECT DISTINCT chain FROM audit_events ORDER BY 1"
    )
    return [str(r["chain"]) for r in rows]


async def chain_events(conn: asyncpg.Connection, chain: str) -> list[Event]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM audit_events WHERE chain = $1 ORDER BY seq",  # noqa: S608
        chain,
    )
    return [_event(r) for r in rows]


async def head(conn: asyncpg.Connection, chain: str) -> tuple[int, str] | None:
    r = await conn.fetchrow("SELECT seq, hash FROM audit_heads WHERE chain = $1", chain)
    return (int(r["seq"]), str(r["hash"])) if r else None


async def search(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    action: str | None,
    actor: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
    after_seq: int,
    limit: int,
) -> list[Event]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM audit_events WHERE org_id = $1"  # noqa: S608
        " AND ($2::text IS NULL OR action = $2 OR action LIKE $2 || '.%')"
        " AND ($3::text IS NULL OR actor = $3)"
        " AND ($4::text IS NULL OR outcome = $4)"
        " AND ($5::timestamptz IS NULL OR at >= $5)"
        " AND ($6::timestamptz IS NULL OR at < $6)"
        " AND seq > $7 ORDER BY seq LIMIT $8",
        org_id,
        action,
        actor,
        outcome,
        since,
        until,
        after_seq,
        limit,
    )
    return [_event(r) for r in rows]
