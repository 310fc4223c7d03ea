"""Invoice composition (pure): plan segments and aggregated usage in, line items out.

Kept apart from the service so that the rules of an invoice can be read and tested in
one place, without a database:

* The **base fee** of each plan segment overlapping the period is prorated by the
  seconds it covers (cumulative floor, see ``pricing.prorate``): a plan change at
  15:00 on the 10th charges the old plan up to that second and the new one after it.
  Base fees are billed in arrears with the period's invoice.
* **Usage** of the whole period is priced by the plan in effect at the end of the
  period (its last segment): tiers apply to a period's total, so splitting usage
  between plans would make each tier boundary depend on when the change happened.
* One line per base-fee segment and one per tier reached; the total is their sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from controlplane.billing import catalog, pricing
from controlplane.billing.catalog import Metric
from controlplane.billing.pricing import Period


class NoSubscription(ValueError):
    """No plan was subscribed at any moment of the period."""


@dataclass(frozen=True)
class Segment:
    """A plan in effect over ``[start, end)`` (``end`` None: still in effect)."""

    plan: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    plan: str
    metric: str | None
    quantity: int
    unit_amount: int
    unit_size: int
    tier: int | None
    amount: int
    starts: str
    ends: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Draft:
    period: Period
    currency: str
    lines: tuple[Line, ...]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def clip(period: Period, segments: Sequence[Segment]) -> list[Segment]:
    """The parts of ``segments`` inside ``period``, in time order, empty ones dropped."""
    out = []
    for seg in sorted(segments, key=lambda s: s.start):
        start = max(seg.start, period.start)
        end = period.end if seg.end is None else min(seg.end, period.end)
        if start < end:
            out.append(Segment(seg.plan, start, end))
    return out


def _tier_text(charge: pricing.Charge, unit: str) -> str:
    tier = f"tier {charge.tier}: " if charge.tier is not None else ""
    flat = f" + {charge.flat_amount} flat" if charge.flat_amount else ""
    return f"{tier}{charge.quantity} {unit} at {charge.unit_amount}/{charge.unit_size}{flat}"


def build(*, period: Period, segments: Sequence[Segment], usage: Mapping[Metric, int]) -> Draft:
    """The invoice of ``period``; NoSubscription when no segment overlaps it."""
    parts = clip(period, segments)
    if not parts:
        raise NoSubscription(f"no subscription during {period.key}")
    currencies = {catalog.plan(p.plan).currency for p in parts}
    if len(currencies) != 1:
        raise ValueError("plans of one period must share a currency")
    lines: list[Line] = []
    for part in parts:
        plan = catalog.plan(part.plan)
        if plan.base_fee == 0:
            continue
        assert part.end is not None
        amount = pricing.prorate(
            plan.base_fee,
            start=period.offset(part.start),
            end=period.offset(part.end),
            period=period.seconds,
        )
        lines.append(
            Line(
                kind="base",
                description=f"{plan.name} base fee",
                plan=plan.key,
                metric=None,
                quantity=period.offset(part.end) - period.offset(part.start),
                unit_amount=plan.base_fee,
                unit_size=period.seconds,
                tier=None,
                amount=amount,
                starts=part.start.isoformat(),
                ends=part.end.isoformat(),
            )
        )
    final = catalog.plan(parts[-1].plan)
    for metric, spec in catalog.METRICS.items():
        price = final.prices.get(metric)
        if price is None:
            continue
        for charge in pricing.charges(price, usage.get(metric, 0)):
            lines.append(
                Line(
                    kind="usage",
                    description=f"{spec.description}, {_tier_text(charge, spec.unit)}",
                    plan=final.key,
                    metric=metric.value,
                    quantity=charge.quantity,
                    unit_amount=charge.unit_amount,
                    unit_size=charge.unit_size,
                    tier=charge.tier,
                    amount=charge.amount,
                    starts=period.start.isoformat(),
                    ends=period.end.isoformat(),
                )
            )
    return Draft(period, next(iter(currencies)), tuple(lines))
