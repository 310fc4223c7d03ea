"""Rules of billing: subscriptions, the usage window, period close and finalization.

* **Subscriptions** keep their plan history as segments ``[valid_from, valid_to)``;
  a plan change ends one segment and opens the next at the same instant, which is
  what proration reads. Changing the plan also sets the organisation's ``plan``, the
  value tenant creation checks its limits against (one source for the limits).
  Cancelling ends the open segment at the end of the current period.
* **Usage** is accepted while its period is open: until ``grace`` after the period
  ended and never once its invoice is finalized; timestamps more than
  ``max_future`` ahead are refused. A batch is partly accepted: refused events are
  listed with the reason, so a producer can drop them instead of retrying forever.
  Events are stored in idempotency-key order so that two batches sharing keys take
  their row locks in the same order and cannot deadlock.
* **Invoices**: closing a period (after it ended) writes or refreshes its draft;
  finalizing recomputes the lines one last time under the exclusive usage lock and
  freezes them. Finalizing a finalized invoice returns it unchanged (idempotent).
  ``close_due`` does both for every organisation once the grace window is over (for
  a timer); the API routes let a billing manager do it by hand.

Every change of billing state is audited in the same transaction. Usage batches are
not: they are metering data at thousands of events a second, not billing changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from controlplane import db
from controlplane.audit import service as audit
from controlplane.billing import catalog, invoicing, pricing, repository
from controlplane.billing.catalog import Metric
from controlplane.billing.pricing import Flat, Graduated, Period, PerUnit, Price
from controlplane.billing.repository import InvoiceRow, SegmentRow, SubscriptionRow
from controlplane.billing.schemas import (
    InvoiceOut,
    MetricUsage,
    PlanOut,
    PriceOut,
    SegmentOut,
    SubscriptionChange,
    SubscriptionOut,
    SubscriptionStart,
    TierOut,
    UsageOut,
)
from controlplane.context import SERVICE_PRINCIPAL, OrgAccess, RequestInfo
from controlplane.errors import Conflict, InvalidInput, NotFound
from controlplane.notifications import service as notifications
from controlplane.notifications.service import OrgEvent
from controlplane.orgs.repository import OrgRow
from controlplane.rbac.permissions import Grants
from controlplane.webhooks.schemas import EventType
from tenantry.internal_api import (
    OrgLimitsOut,
    UsageBatch,
    UsageEvent,
    UsageRejected,
    UsageResult,
)

EVENTS = TypeAdapter(list[UsageEvent])

CLOSER_INFO = RequestInfo(ip="", user_agent="tenantry-billing-closer", request_id="")


def service_access(org: OrgRow) -> OrgAccess:
    """What the internal service may do in ``org``: billing:manage, nothing else."""
    return OrgAccess(
        org=org, role="service", grants=Grants.of(["billing:manage"]), principal=SERVICE_PRINCIPAL
    )


@dataclass(frozen=True)
class UsagePolicy:
    grace: timedelta
    max_future: timedelta


async def org_for_service(conn: asyncpg.Connection, org_id: uuid.UUID) -> OrgRow:
    found = await repository.org(conn, org_id)
    if found is None:
        raise NotFound("organisation not found")
    return found


# ---------------------------------------------------------------------------------- plans


def _price_out(metric: Metric, price: Price) -> PriceOut:
    unit = catalog.METRICS[metric].unit
    if isinstance(price, Flat):
        return PriceOut(metric=metric, model="flat", unit=unit, unit_size=1, amount=price.amount)
    if isinstance(price, PerUnit):
        return PriceOut(
            metric=metric,
            model="per_unit",
            unit=unit,
            unit_size=price.unit_size,
            unit_amount=price.unit_amount,
        )
    return PriceOut(
        metric=metric,
        model="graduated" if isinstance(price, Graduated) else "volume",
        unit=unit,
        unit_size=price.unit_size,
        tiers=[
            TierOut(up_to=t.up_to, unit_amount=t.unit_amount, flat_amount=t.flat_amount)
            for t in price.tiers
        ],
    )


def plans() -> list[PlanOut]:
    return [
        PlanOut(
            key=plan.key,
            name=plan.name,
            currency=plan.currency,
            base_fee=plan.base_fee,
            prices=[_price_out(m, p) for m, p in plan.prices.items()],
            limits=catalog.limits_out(plan.key),
        )
        for plan in catalog.PLANS.values()
    ]


async def org_limits(conn: asyncpg.Connection, org_id: uuid.UUID) -> OrgLimitsOut:
    """The limits of the organisation's current plan, for the operator's own check."""
    org = await org_for_service(conn, org_id)
    return OrgLimitsOut(plan=org.plan, limits=catalog.limits_out(org.plan))


# -------------------------------------------------------------------------- subscriptions


def _current(segs: list[SegmentRow], now: datetime) -> str | None:
    for seg in segs:
        if seg.valid_from <= now and (seg.valid_to is None or now < seg.valid_to):
            return seg.plan
    return None


def _status(sub: SubscriptionRow, now: datetime) -> str:
    if sub.cancel_at is None:
        return "active"
    return "canceling" if now < sub.cancel_at else "ended"


def _sub_out(sub: SubscriptionRow, segs: list[SegmentRow], *, now: datetime) -> SubscriptionOut:
    period = pricing.period_of(now)
    return SubscriptionOut(
        plan=_current(segs, now),
        status=_status(sub, now),
        currency=sub.currency,
        started_at=sub.started_at,
        cancel_at=sub.cancel_at,
        current_period_start=period.start,
        current_period_end=period.end,
        segments=[
            SegmentOut(plan=s.plan, valid_from=s.valid_from, valid_to=s.valid_to) for s in segs
        ],
    )


async def subscription(
    conn: asyncpg.Connection, access: OrgAccess, *, now: datetime
) -> SubscriptionOut:
    sub = await repository.subscription(conn, access.org.id)
    if sub is None:
        raise NotFound("the organisation has no subscription")
    return _sub_out(sub, await repository.segments(conn, access.org.id), now=now)


async def start(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    body: SubscriptionStart,
    info: RequestInfo,
    now: datetime,
) -> SubscriptionOut:
    org_id = access.org.id
    await repository.lock_org(conn, org_id)
    sub = await repository.subscription(conn, org_id)
    if sub is not None and _status(sub, now) != "ended":
        raise Conflict("the organisation already has a subscription; change its plan instead")
    plan = catalog.plan(body.plan.value)
    await repository.upsert_subscription(
        conn, org_id=org_id, currency=plan.currency, started_at=now
    )
    await repository.open_segment(conn, org_id=org_id, plan=plan.key, valid_from=now)
    await repository.set_org_plan(conn, org_id, plan=plan.key)
    await audit.record_as(
        conn,
        access,
        action="billing.subscription.start",
        target=f"org/{access.org.slug}/subscription",
        info=info,
        detail={"plan": plan.key},
    )
    return await subscription(conn, access, now=now)


async def change_plan(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    body: SubscriptionChange,
    info: RequestInfo,
    now: datetime,
) -> SubscriptionOut:
    """Switch plans at ``now``; the period's invoice prorates both base fees."""
    org_id = access.org.id
    await repository.lock_org(conn, org_id)
    sub = await repository.subscription(conn, org_id)
    if sub is None or _status(sub, now) == "ended":
        raise NotFound("the organisation has no active subscription")
    if _status(sub, now) == "canceling":
        raise Conflict("the subscription is cancelled at the end of the period")
    segs = await repository.segments(conn, org_id)
    old = _current(segs, now)
    new = catalog.plan(body.plan.value)
    if old == new.key:
        raise Conflict(f"the subscription is already on the {new.key} plan")
    if new.currency != sub.currency:
        raise Conflict("a plan change cannot change the currency; start a new subscription")
    await repository.end_open_segment(conn, org_id, at=now)
    await repository.open_segment(conn, org_id=org_id, plan=new.key, valid_from=now)
    await repository.set_org_plan(conn, org_id, plan=new.key)
    await audit.record_as(
        conn,
        access,
        action="billing.subscription.change",
        target=f"org/{access.org.slug}/subscription",
        info=info,
        detail={"from": old or "", "to": new.key, "at": now.isoformat()},
    )
    return await subscription(conn, access, now=now)


async def cancel(
    conn: asyncpg.Connection, access: OrgAccess, *, info: RequestInfo, now: datetime
) -> SubscriptionOut:
    """Cancel at the end of the current period (a second call changes nothing)."""
    org_id = access.org.id
    await repository.lock_org(conn, org_id)
    sub = await repository.subscription(conn, org_id)
    if sub is None or _status(sub, now) == "ended":
        raise NotFound("the organisation has no active subscription")
    if _status(sub, now) == "active":
        at = pricing.period_of(now).end
        await repository.set_cancel_at(conn, org_id, cancel_at=at)
        await repository.end_open_segment(conn, org_id, at=at)
        await audit.record_as(
            conn,
            access,
            action="billing.subscription.cancel",
            target=f"org/{access.org.slug}/subscription",
            info=info,
            detail={"at": at.isoformat()},
        )
    return await subscription(conn, access, now=now)


# ---------------------------------------------------------------------------------- usage


def _oldest_open(now: datetime, grace: timedelta) -> Period:
    """The oldest period that still takes late events at ``now``."""
    period = pricing.period_of(now)
    while period.start + grace > now:  # the previous period still takes late events
        period = period.previous()
    return period


async def ingest(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    batch: UsageBatch,
    policy: UsagePolicy,
    now: datetime,
) -> UsageResult:
    events = batch.events
    oldest = _oldest_open(now, policy.grace).start
    latest = now + policy.max_future
    rejected: list[UsageRejected] = []
    keep: list[int] = []
    for index, ev in enumerate(events):
        if ev.timestamp < oldest:
            rejected.append(
                UsageRejected(
                    index=index,
                    idempotency_key=ev.idempotency_key,
                    reason="the period of this event is closed",
                )
            )
        elif ev.timestamp > latest:
            rejected.append(
                UsageRejected(
                    index=index,
                    idempotency_key=ev.idempotency_key,
                    reason="the timestamp is in the future",
                )
            )
        else:
            keep.append(index)
    await repository.lock_usage_shared(conn, access.org.id)
    starts, period = [], pricing.period_of(oldest)
    while period.start <= latest:
        starts.append(period.start)
        period = period.next()
    closed = await repository.finalized_periods(conn, access.org.id, starts=starts)
    if closed:
        still = []
        for index in keep:
            ev = events[index]
            if pricing.period_of(ev.timestamp).start in closed:
                rejected.append(
                    UsageRejected(
                        index=index,
                        idempotency_key=ev.idempotency_key,
                        reason="the invoice of this period is finalized",
                    )
                )
            else:
                still.append(index)
        keep = still
    keep.sort(key=lambda i: events[i].idempotency_key)
    new = 0
    if keep:
        # Serialised by pydantic_core in Rust straight from the validated models: a
        # Python dict or isoformat() per event cost more than the whole INSERT.
        payload = EVENTS.dump_json([events[i] for i in keep]).decode()
        new = await repository.insert_usage(conn, org_id=access.org.id, events_json=payload)
    rejected.sort(key=lambda r: r.index)
    return UsageResult(
        received=len(events), accepted=new, duplicates=len(keep) - new, rejected=rejected
    )


async def meter_dashboard_query(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    tenant: str,
    policy: UsagePolicy,
    now: datetime,
) -> None:
    """One ``dashboard_queries`` event: a panel query ClickHouse ran (not a cache hit)."""
    event = UsageEvent(
        metric=Metric.DASHBOARD_QUERIES,
        tenant=tenant,
        quantity=1,
        timestamp=now,
        idempotency_key=f"query:{uuid.uuid4()}",
    )
    await ingest(conn, access, batch=UsageBatch(events=[event]), policy=policy, now=now)


async def _quantities(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, period: Period
) -> dict[Metric, tuple[int, dict[str, int]]]:
    stats = await repository.usage_stats(conn, org_id, start=period.start, end=period.end)
    return {m: catalog.aggregate(m, stats.get(m.value, [])) for m in catalog.METRICS}


async def usage(
    conn: asyncpg.Connection, access: OrgAccess, *, period: str | None, now: datetime
) -> UsageOut:
    which = _period(period) if period else pricing.period_of(now)
    found = await _quantities(conn, access.org.id, period=which)
    limit = catalog.plan(access.org.plan).limits.events_per_month
    return UsageOut(
        plan=access.org.plan,
        events_per_month=limit,
        events_over_limit=found[Metric.EVENTS_INGESTED][0] > limit,
        period=which.key,
        period_start=which.start,
        period_end=which.end,
        metrics=[
            MetricUsage(
                metric=m.value,
                aggregation=catalog.METRICS[m].aggregation.value,
                unit=catalog.METRICS[m].unit,
                quantity=q,
                by_tenant=per,
            )
            for m, (q, per) in found.items()
        ],
    )


USAGE_THRESHOLDS = (80, 100)
"""Percentages of the plan's monthly events at which an organisation is told, once each
per period."""


async def usage_thresholds(conn: asyncpg.Connection, *, now: datetime, email: bool) -> int:
    """Tell every organisation whose events this period crossed a threshold of its plan's
    ``events_per_month`` (``USAGE_THRESHOLDS``) that it did: once per threshold and
    period, however often this runs and in however many processes (the notice's key is
    the threshold and the period). Returns how many organisations were told now."""
    period = pricing.period_of(now)
    told = 0
    rows = await repository.events_by_org(
        conn, metric=Metric.EVENTS_INGESTED.value, start=period.start, end=period.end
    )
    for org_id, plan_key, total in rows:
        try:
            limit = catalog.plan(plan_key).limits.events_per_month
        except KeyError:
            continue
        for percent in USAGE_THRESHOLDS:
            if limit <= 0 or total * 100 < limit * percent:
                continue
            event = OrgEvent(
                type=EventType.USAGE_THRESHOLD,
                name=f"Usage{percent}Percent",
                summary=f"{total:,} events this period: {percent} % of the plan's {limit:,}",
                data={
                    "percent": percent,
                    "metric": Metric.EVENTS_INGESTED.value,
                    "quantity": total,
                    "limit": limit,
                    "period": period.key,
                },
                once=(f"usage-{percent}-{period.key}", period.start),
            )
            if await notifications.org_event(conn, org_id=org_id, event=event, email=email):
                told += 1
    return told


# ------------------------------------------------------------------------------- invoices


def _period(text: str) -> Period:
    try:
        return pricing.parse_period(text)
    except ValueError as exc:
        raise InvalidInput(f"period: {exc}") from None


async def _draft(conn: asyncpg.Connection, org_id: uuid.UUID, *, period: Period) -> invoicing.Draft:
    segs = [
        invoicing.Segment(s.plan, s.valid_from, s.valid_to)
        for s in await repository.segments(conn, org_id)
    ]
    found = await _quantities(conn, org_id, period=period)
    try:
        return invoicing.build(
            period=period, segments=segs, usage={m: q for m, (q, _) in found.items()}
        )
    except invoicing.NoSubscription as exc:
        raise NotFound(str(exc)) from exc


def _lines(draft: invoicing.Draft) -> list[dict[str, Any]]:
    return [line.as_json() for line in draft.lines]


def _invoice_out(row: InvoiceRow) -> InvoiceOut:
    return InvoiceOut.of_lines(
        row.lines,
        id=row.id,
        number=row.number,
        status=row.status,
        period=pricing.period_of(row.period_start).key,
        period_start=row.period_start,
        period_end=row.period_end,
        currency=row.currency,
        total=row.total,
        created_at=row.created_at,
        finalized_at=row.finalized_at,
    )


async def upcoming(conn: asyncpg.Connection, access: OrgAccess, *, now: datetime) -> InvoiceOut:
    """The current period's invoice as it would be with today's usage (not stored)."""
    period = pricing.period_of(now)
    draft = await _draft(conn, access.org.id, period=period)
    return InvoiceOut.of_lines(
        _lines(draft),
        id=None,
        number=None,
        status="preview",
        period=period.key,
        period_start=period.start,
        period_end=period.end,
        currency=draft.currency,
        total=draft.total,
        created_at=None,
        finalized_at=None,
    )


async def list_invoices(conn: asyncpg.Connection, access: OrgAccess) -> list[InvoiceOut]:
    return [_invoice_out(r) for r in await repository.invoices(conn, access.org.id)]


async def get_invoice(
    conn: asyncpg.Connection, access: OrgAccess, *, invoice_id: uuid.UUID
) -> InvoiceOut:
    row = await repository.invoice(conn, access.org.id, invoice_id=invoice_id)
    if row is None:
        raise NotFound("invoice not found")
    return _invoice_out(row)


async def close_period(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    period_key: str,
    info: RequestInfo,
    now: datetime,
) -> InvoiceOut:
    """Write (or refresh) the draft invoice of an ended period."""
    period = _period(period_key)
    if now < period.end:
        raise Conflict(f"the period {period.key} has not ended; see the upcoming invoice")
    existing = await repository.invoice_of_period(conn, access.org.id, period_start=period.start)
    if existing is not None and existing.status == "finalized":
        return _invoice_out(existing)
    draft = await _draft(conn, access.org.id, period=period)
    row = await repository.save_draft(
        conn,
        org_id=access.org.id,
        period_start=period.start,
        period_end=period.end,
        currency=draft.currency,
        total=draft.total,
        lines=_lines(draft),
    )
    if row is None:  # finalized between our read and our write
        again = await repository.invoice_of_period(conn, access.org.id, period_start=period.start)
        assert again is not None
        return _invoice_out(again)
    await audit.record_as(
        conn,
        access,
        action="billing.invoice.draft",
        info=info,
        target=f"invoice/{row.id}",
        detail={"period": period.key, "total": str(row.total), "currency": row.currency},
    )
    return _invoice_out(row)


async def finalize(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    invoice_id: uuid.UUID,
    info: RequestInfo,
    email: bool = False,
) -> InvoiceOut:
    """Freeze a draft; a finalized invoice is returned as it is (idempotent). The
    organisation is told once, when it is frozen (a notice, its webhooks, and with
    ``email`` its owners)."""
    await repository.lock_usage_exclusive(conn, access.org.id)
    row = await repository.invoice(conn, access.org.id, invoice_id=invoice_id, lock=True)
    if row is None:
        raise NotFound("invoice not found")
    if row.status == "finalized":
        return _invoice_out(row)
    period = pricing.period_of(row.period_start)
    draft = await _draft(conn, access.org.id, period=period)
    number = f"{access.org.slug.upper()}-{period.start:%Y%m}"
    done = await repository.finalize(
        conn, invoice_id=row.id, number=number, total=draft.total, lines=_lines(draft)
    )
    await audit.record_as(
        conn,
        access,
        action="billing.invoice.finalize",
        info=info,
        target=f"invoice/{row.id}",
        detail={"number": number, "total": str(done.total), "currency": done.currency},
    )
    event = OrgEvent(
        type=EventType.INVOICE_FINALIZED,
        name="InvoiceFinalized",
        summary=f"Invoice {number} for {period.key}: {done.total} {done.currency}",
        data={
            "invoice_id": str(done.id),
            "number": number,
            "period": period.key,
            "total": str(done.total),
            "currency": done.currency,
        },
    )
    await notifications.org_event(conn, org_id=access.org.id, event=event, email=email)
    return _invoice_out(done)


async def close_due(
    pool: asyncpg.Pool, *, now: datetime, grace: timedelta, email: bool = False
) -> list[str]:
    """Close and finalize the previous period of every subscribed organisation once
    its late-event window is over; return the invoice numbers finalized now.

    Meant for a timer (a CLI command or a CronJob). Each organisation is finalized in
    its own transaction, so one failure does not hold back the others, and running it
    again finalizes nothing twice.
    """
    period = pricing.period_of(now).previous()
    if now < period.end + grace:
        return []
    async with db.transaction(pool) as conn:
        due = await repository.orgs_to_close(conn, start=period.start, end=period.end)
    numbers = []
    for org in due:
        access = service_access(org)
        async with db.transaction(pool) as conn:
            draft = await close_period(
                conn, access, period_key=period.key, info=CLOSER_INFO, now=now
            )
            assert draft.id is not None
            done = await finalize(conn, access, invoice_id=draft.id, info=CLOSER_INFO, email=email)
        numbers.append(str(done.number))
    return numbers
