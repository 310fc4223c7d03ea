"""Recording and verifying audit events.

``record`` appends inside the caller's transaction, so an event exists exactly when the
change it describes was committed. ``record_separately`` uses its own transaction, for
outcomes whose request rolls back (failed logins, refresh-token reuse, denials).
``record_as`` is ``record`` for a change made through an organisation's access: the
organisation, and the principal as the actor, come from the ``OrgAccess``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from controlplane import db
from controlplane.audit import chain, repository
from controlplane.context import (
    SERVICE_ACTOR,
    SERVICE_PRINCIPAL,
    OrgAccess,
    Principal,
    RequestInfo,
)


async def record(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID | None,
    actor: str,
    action: str,
    target: str,
    info: RequestInfo,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> chain.Event:
    org = str(org_id) if org_id else None
    name = chain.chain_of(org)
    seq, prev = await repository.lock_head(conn, name)
    ev = chain.Event(
        chain=name,
        seq=seq + 1,
        org_id=org,
        at=datetime.now(UTC),
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        ip=info.ip,
        user_agent=info.user_agent,
        request_id=info.request_id,
        detail=detail or {},
        prev_hash=prev,
    )
    ev = replace(ev, hash=ev.computed_hash())
    await repository.append(conn, ev)
    return ev


def actor_of(principal: Principal) -> str:
    """The audit actor of ``principal``: the user's id, or ``service:internal`` for the
    internal service (only its exact principal: a user signed in through an OAuth client
    that happens to share the service's ``client_id`` stays themselves)."""
    if principal == SERVICE_PRINCIPAL:
        return SERVICE_ACTOR
    return str(principal.user_id)


async def record_as(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    action: str,
    target: str,
    info: RequestInfo,
    detail: dict[str, Any] | None = None,
) -> chain.Event:
    """``record`` a successful change made with ``access``: in its organisation, by its
    principal (``actor_of``), inside the caller's transaction."""
    return await record(
        conn,
        org_id=access.org.id,
        actor=actor_of(access.principal),
        action=action,
        target=target,
        info=info,
        detail=detail,
    )


async def record_separately(
    pool: asyncpg.Pool,
    *,
    org_id: uuid.UUID | None,
    actor: str,
    action: str,
    target: str,
    info: RequestInfo,
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    async with db.transaction(pool) as conn:
        await record(
            conn,
            org_id=org_id,
            actor=actor,
            action=action,
            target=target,
            info=info,
            outcome=outcome,
            detail=detail,
        )


@dataclass(frozen=True)
class Filters:
    action: str | None
    actor: str | None
    outcome: str | None
    since: datetime | None
    until: datetime | None


async def search(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    filters: Filters,
    *,
    after: int,
    limit: int,
) -> list[chain.Event]:
    """One page of an organisation's events matching ``filters``, in sequence order."""
    return await repository.search(
        conn,
        org_id=org_id,
        action=filters.action,
        actor=filters.actor,
        outcome=filters.outcome,
        since=filters.since,
        until=filters.until,
        after_seq=after,
        limit=limit,
    )


async def verify_all(conn: asyncpg.Connection, only: str | None = None) -> list[chain.Verdict]:
    names = [only] if only else await repository.chains(conn)
    verdicts = []
    for name in names:
        events = await repository.chain_events(conn, name)
        verdicts.append(chain.verify(name, events, await repository.head(conn, name)))
    return verdicts
