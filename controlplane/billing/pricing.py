"""Pricing math: prices, tiers, proration and billing periods, all pure.

Pure on purpose: an invoice must be reproducible from a plan, a set of quantities and
the plan's time segments alone, and the property-based tests exercise every rule here
without a database.

Money is an ``int`` of minor units (cents) with the currency carried by the plan; no
floats anywhere. Two places produce fractions of a minor unit, and both are documented
rules:

* **Unit prices** are ``unit_amount`` minor units per ``unit_size`` base units (for
  example 2 cents per 1,000 events). A line's amount is rounded *half up* once, per
  line item; an invoice total is the sum of its lines, so what a customer reads adds
  up to the total to the cent.
* **Proration** of a fee ``F`` over a period of ``P`` seconds charges a segment
  ``[a, b)`` (offsets from the period start) ``floor(F*b/P) - floor(F*a/P)``: the
  *cumulative floor*. Adjacent segments at the same fee add up to exactly ``F`` (no
  cent appears or vanishes when a period is split), and every segment is within one
  minor unit of its exact share.

Billing periods are calendar months in UTC: ``[first instant of the month, first
instant of the next month)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# ----------------------------------------------------------------------------- rounding


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, halves up.

    Both must be non-negative (prices and quantities are): exact integer arithmetic,
    never a float.
    """
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up takes a non-negative numerator and positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


# ------------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Flat:
    """A fixed amount every period, whatever the quantity (unlimited use of a metric)."""

    amount: int


@dataclass(frozen=True)
class PerUnit:
    """``unit_amount`` minor units per ``unit_size`` base units."""

    unit_amount: int
    unit_size: int = 1


@dataclass(frozen=True)
class Tier:
    """Quantities up to ``up_to`` (inclusive; None: no bound) at ``unit_amount`` per
    ``unit_size`` of the price, plus ``flat_amount`` once when the tier is reached."""

    up_to: int | None
    unit_amount: int
    flat_amount: int = 0


@dataclass(frozen=True)
class Graduated:
    """Each slice of the quantity is priced by the tier it falls in (like income tax)."""

    tiers: tuple[Tier, ...]
    unit_size: int = 1


@dataclass(frozen=True)
class Volume:
    """The whole quantity is priced by the one tier the total falls in."""

    tiers: tuple[Tier, ...]
    unit_size: int = 1


Price = Flat | PerUnit | Graduated | Volume


@dataclass(frozen=True)
class Charge:
    """One line item of a metric: a quantity and its amount (tier: 1-based or None)."""

    quantity: int
    amount: int
    unit_amount: int
    unit_size: int
    tier: int | None = None
    flat_amount: int = 0


def validate(price: Price) -> None:
    """Raise ValueError for a price that cannot be evaluated unambiguously."""
    if isinstance(price, Flat):
        if price.amount < 0:
            raise ValueError("a flat amount cannot be negative")
        return
    if price.unit_size <= 0:
        raise ValueError("unit_size must be positive")
    if isinstance(price, PerUnit):
        if price.unit_amount < 0:
            raise ValueError("a unit amount cannot be negative")
        return
    if not price.tiers:
        raise ValueError("a tiered price needs at least one tier")
    previous = 0
    for index, tier in enumerate(price.tiers):
        last = index == len(price.tiers) - 1
        if tier.unit_amount < 0 or tier.flat_amount < 0:
            raise ValueError("tier amounts cannot be negative")
        if (tier.up_to is None) != last:
            raise ValueError("only the last tier is unbounded, and it must be")
        if tier.up_to is not None:
            if tier.up_to <= previous:
                raise ValueError("tier bounds must increase strictly from 1")
            previous = tier.up_to


def _units(quantity: int, *, unit_amount: int, unit_size: int) -> int:
    return round_half_up(quantity * unit_amount, unit_size)


def charges(price: Price, quantity: int) -> list[Charge]:
    """The line items of ``quantity`` under ``price``.

    Zero quantity charges nothing, except a ``Flat`` price, which is due every period.
    """
    if quantity < 0:
        raise ValueError("quantity cannot be negative")
    if isinstance(price, Flat):
        return [Charge(quantity, price.amount, price.amount, 1)]
    if quantity == 0:
        return []
    if isinstance(price, PerUnit):
        amount = _units(quantity, unit_amount=price.unit_amount, unit_size=price.unit_size)
        return [Charge(quantity, amount, price.unit_amount, price.unit_size)]
    if isinstance(price, Volume):
        for index, tier in enumerate(price.tiers, start=1):
            if tier.up_to is None or quantity <= tier.up_to:
                amount = (
                    _units(quantity, unit_amount=tier.unit_amount, unit_size=price.unit_size)
                    + tier.flat_amount
                )
                return [
                    Charge(
                        quantity,
                        amount,
                        tier.unit_amount,
                        price.unit_size,
                        tier=index,
                        flat_amount=tier.flat_amount,
                    )
                ]
        raise ValueError("no tier covers the quantity (the last tier must be unbounded)")
    lines: list[Charge] = []
    lower = 0
    for index, tier in enumerate(price.tiers, start=1):
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        inside = upper - lower
        if inside <= 0:
            break
        amount = (
            _units(inside, unit_amount=tier.unit_amount, unit_size=price.unit_size)
            + tier.flat_amount
        )
        lines.append(
            Charge(
                inside,
                amount,
                tier.unit_amount,
                price.unit_size,
                tier=index,
                flat_amount=tier.flat_amount,
            )
        )
        if tier.up_to is None:
            break
        lower = tier.up_to
    return lines


def total(price: Price, quantity: int) -> int:
    """The amount of ``quantity`` under ``price``: the sum of its line items."""
    return sum(c.amount for c in charges(price, quantity))


# ---------------------------------------------------------------------------- proration


def prorate(fee: int, *, start: int, end: int, period: int) -> int:
    """The share of ``fee`` for the segment ``[start, end)`` of a ``period`` (seconds
    from the period start; any consistent unit works): cumulative floor, see above."""
    if fee < 0 or period <= 0 or not 0 <= start <= end <= period:
        raise ValueError("prorate needs fee >= 0 and 0 <= start <= end <= period > 0")
    return (fee * end) // period - (fee * start) // period


# ------------------------------------------------------------------------------ periods

_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits (\d takes any script's)


@dataclass(frozen=True)
class Period:
    """One monthly billing period in UTC, ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        return f"{self.start.year:04d}-{self.start.month:02d}"

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def offset(self, at: datetime) -> int:
        """Seconds from the period start to ``at``, clamped into the period."""
        clamped = min(max(at, self.start), self.end)
        delta = clamped - self.start
        return delta.days * 86_400 + delta.seconds  # whole seconds; microseconds dropped

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def next(self) -> Period:
        return period_of(self.end)

    def previous(self) -> Period:
        year, month = self.start.year, self.start.month - 1
        if month == 0:
            year, month = year - 1, 12
        return period_of(datetime(year, month, 1, tzinfo=UTC))


def period_of(at: datetime) -> Period:
    """The period holding ``at`` (an aware datetime; converted to UTC)."""
    if at.tzinfo is None:
        raise ValueError("billing needs aware datetimes")
    utc = at.astimezone(UTC)
    start = datetime(utc.year, utc.month, 1, tzinfo=UTC)
    year, month = (utc.year + 1, 1) if utc.month == 12 else (utc.year, utc.month + 1)
    return Period(start, datetime(year, month, 1, tzinfo=UTC))


def parse_period(text: str) -> Period:
    """``"2026-10"`` → that month; ValueError otherwise (also for 9999-12, whose end
    would be in year 10000)."""
    match = _PERIOD.fullmatch(text)
    if match and 1 <= int(match.group(2)) <= 12 and int(match.group(1)) >= 2000:
        try:
            return period_of(datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC))
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a billing period like 2026-10")
