"""HTTP routes of the audit trail: list/filter, NDJSON export and chain verification,
all behind ``audit:read`` and limited to the caller's organisation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from controlplane.audit import chain, service
from controlplane.audit.schemas import AuditEventOut, AuditPage, VerifyOut
from controlplane.audit.service import Filters
from controlplane.context import OrgAccess
from controlplane.deps import Conn
from controlplane.rbac.dependencies import OrgPermission
from controlplane.validation import PRINTABLE

router = APIRouter(prefix="/v1/orgs/{org_id}/audit", tags=["audit"])

AuditRead = Annotated[OrgAccess, Depends(OrgPermission("audit:read"))]


def _out(ev: chain.Event) -> AuditEventOut:
    return AuditEventOut(
        seq=ev.seq,
        at=ev.at,
        actor=ev.actor,
        action=ev.action,
        target=ev.target,
        outcome=ev.outcome,
        ip=ev.ip,
        user_agent=ev.user_agent,
        request_id=ev.request_id,
        detail=ev.detail,
        prev_hash=ev.prev_hash,
        hash=ev.hash,
    )


async def _filters(
    action: Annotated[str | None, Query(max_length=100, pattern=PRINTABLE)] = None,
    actor: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE)] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|failure|denied)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Filters:
    return Filters(action, actor, outcome, since, until)


FilterQuery = Annotated[Filters, Depends(_filters)]


@router.get("")
async def list_audit_events(
    access: AuditRead,
    conn: Conn,
    filters: FilterQuery,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    events = await service.search(conn, access.org.id, filters, after=after, limit=limit)
    return AuditPage(
        events=[_out(e) for e in events],
        next_after=events[-1].seq if len(events) == limit else None,
    )


@router.get("/export", response_class=Response)
async def export_audit_events(access: AuditRead, conn: Conn, filters: FilterQuery) -> Response:
    lines: list[str] = []
    after = 0
    while True:
        page = await service.search(conn, access.org.id, filters, after=after, limit=1000)
        lines.extend(_out(e).model_dump_json() for e in page)
        if len(page) < 1000:
            break
        after = page[-1].seq
    return Response(
        "".join(line + "\n" for line in lines),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="audit-{access.org.slug}.ndjson"'},
    )


@router.get("/verify")
async def verify_audit_chain(access: AuditRead, conn: Conn) -> VerifyOut:
    [verdict] = await service.verify_all(conn, chain.chain_of(str(access.org.id)))
    return VerifyOut(
        ok=verdict.ok,
        checked=verdict.checked,
        problem=verdict.problem,
        broken_at=verdict.broken_at,
    )
