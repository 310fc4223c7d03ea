"""Pricing math: each price model on hand-checked examples, then properties over
random prices and quantities (hypothesis) for the rules the module docstring promises:
exact integer rounding, tiers that partition the quantity, monotone totals, and
proration that never creates or loses a minor unit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.billing import pricing
from controlplane.billing.pricing import Flat, Graduated, PerUnit, Tier, Volume

TIERS = (Tier(1_000, 0), Tier(10_000, 5, flat_amount=100), Tier(None, 2))


def test_round_half_up_is_exact_and_rounds_halves_up() -> None:
    assert pricing.round_half_up(5, 10) == 1  # 0.5 → 1
    assert pricing.round_half_up(4, 10) == 0  # 0.4 → 0
    assert pricing.round_half_up(15, 10) == 2  # 1.5 → 2
    assert pricing.round_half_up(10**30 + 1, 2) == 5 * 10**29 + 1  # no float anywhere
    with pytest.raises(ValueError, match="non-negative"):
        pricing.round_half_up(-1, 2)


def test_flat_is_due_even_without_usage() -> None:
    assert pricing.total(Flat(200_00), 0) == 200_00
    assert pricing.total(Flat(200_00), 10**9) == 200_00


def test_per_unit_with_unit_size_rounds_once_per_line() -> None:
    price = PerUnit(10, unit_size=1_000)  # 10 cents per 1,000
    assert pricing.total(price, 0) == 0
    assert pricing.total(price, 1_000) == 10
    assert pricing.total(price, 1_049) == 10  # 10.49 → 10
    assert pricing.total(price, 1_050) == 11  # 10.5 → 11


def test_graduated_prices_each_slice_by_its_tier() -> None:
    price = Graduated(TIERS)
    lines = pricing.charges(price, 12_000)
    assert [(c.tier, c.quantity, c.amount) for c in lines] == [
        (1, 1_000, 0),
        (2, 9_000, 9_000 * 5 + 100),
        (3, 2_000, 4_000),
    ]
    assert pricing.total(price, 1_000) == 0  # tier 2 not reached: no flat fee
    assert pricing.total(price, 1_001) == 5 + 100


def test_volume_prices_everything_at_the_reached_tier() -> None:
    price = Volume(TIERS)
    assert pricing.total(price, 1_000) == 0
    assert pricing.total(price, 10_000) == 10_000 * 5 + 100
    lines = pricing.charges(price, 12_000)
    assert [(c.tier, c.quantity, c.amount) for c in lines] == [(3, 12_000, 24_000)]


def test_invalid_prices_are_refused() -> None:
    for bad in (
        Graduated(()),
        Graduated((Tier(10, 1), Tier(5, 1), Tier(None, 1))),
        Graduated((Tier(None, 1), Tier(None, 1))),
        Volume((Tier(10, 1),)),
        PerUnit(1, unit_size=0),
        PerUnit(-1),
        Flat(-1),
    ):
        with pytest.raises(ValueError, match=r"tier|unit|negative"):
            pricing.validate(bad)


def test_proration_examples() -> None:
    assert pricing.prorate(100, start=0, end=30, period=30) == 100
    assert pricing.prorate(100, start=0, end=10, period=30) == 33
    assert pricing.prorate(100, start=10, end=30, period=30) == 67  # 33 + 67 = 100
    with pytest.raises(ValueError, match="prorate needs"):
        pricing.prorate(100, start=20, end=10, period=30)


def test_periods_are_utc_calendar_months() -> None:
    p = pricing.period_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert (p.start, p.end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert p.key == "2026-12"
    assert p.next().key == "2027-01"
    assert p.previous().key == "2026-11"
    assert pricing.parse_period("2024-02").seconds == 29 * 86_400
    assert pricing.period_of(datetime(2026, 3, 1, tzinfo=UTC)).previous().key == "2026-02"
    # 9999-12 would end in year 10000; other scripts' digits and a trailing newline are
    # not the ASCII form the API documents.
    for bad in (
        "2026-13",
        "2026-1",
        "1999-01",
        "x",
        "9999-12",
        "\u0662\u0660\u0662\u0666-\u0661\u0660",
        "2026-10\n",
    ):
        with pytest.raises(ValueError, match="not a billing period"):
            pricing.parse_period(bad)
    with pytest.raises(ValueError, match="aware"):
        pricing.period_of(datetime(2026, 1, 1))  # naive


# ------------------------------------------------------------------------------ properties

amounts = st.integers(min_value=0, max_value=10_000)
sizes = st.integers(min_value=1, max_value=1_000_000)
quantities = st.integers(min_value=0, max_value=10**12)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.sets(st.integers(min_value=1, max_value=10**9), max_size=5)))
    tiers = [Tier(b, draw(amounts), draw(st.integers(0, 1_000))) for b in bounds]
    return (*tiers, Tier(None, draw(amounts), draw(st.integers(0, 1_000))))


@given(n=st.integers(min_value=0, max_value=10**15), d=st.integers(min_value=1, max_value=10**9))
def test_round_half_up_is_within_half_of_exact(n: int, d: int) -> None:
    r = pricing.round_half_up(n, d)
    assert abs(Fraction(r) - Fraction(n, d)) <= Fraction(1, 2)
    if Fraction(n, d) - (n // d) == Fraction(1, 2):
        assert r == n // d + 1


@given(tiers=tier_lists(), unit_size=sizes, q=quantities)
def test_graduated_tiers_partition_the_quantity(
    tiers: tuple[Tier, ...], unit_size: int, q: int
) -> None:
    lines = pricing.charges(Graduated(tiers, unit_size), q)
    assert sum(c.quantity for c in lines) == q
    assert [c.tier for c in lines] == list(range(1, len(lines) + 1))
    for c in lines:
        exact = Fraction(c.quantity * c.unit_amount, unit_size) + c.flat_amount
        assert abs(c.amount - exact) <= Fraction(1, 2)


@given(tiers=tier_lists(), unit_size=sizes, q=quantities, more=quantities)
def test_graduated_total_never_decreases(
    tiers: tuple[Tier, ...], unit_size: int, q: int, more: int
) -> None:
    # Full tiers keep their amount and the partial slice grows; rounding half up is
    # monotone, so per-line rounding cannot make more usage cheaper.
    price = Graduated(tiers, unit_size)
    assert pricing.total(price, q + more) >= pricing.total(price, q)


@given(tiers=tier_lists(), unit_size=sizes, q=quantities)
def test_volume_is_one_line_at_the_tier_holding_the_total(
    tiers: tuple[Tier, ...], unit_size: int, q: int
) -> None:
    lines = pricing.charges(Volume(tiers, unit_size), q)
    if q == 0:
        assert lines == []
        return
    (line,) = lines
    tier = tiers[(line.tier or 0) - 1]
    assert tier.up_to is None or q <= tier.up_to
    before = tiers[(line.tier or 0) - 2].up_to if (line.tier or 0) > 1 else 0
    assert before is not None
    assert q > before
    assert line.amount == pricing.round_half_up(q * tier.unit_amount, unit_size) + tier.flat_amount


@given(unit=amounts, unit_size=sizes, q=quantities)
def test_single_tier_models_equal_per_unit(unit: int, unit_size: int, q: int) -> None:
    per_unit = pricing.total(PerUnit(unit, unit_size), q)
    assert pricing.total(Graduated((Tier(None, unit),), unit_size), q) == per_unit
    assert pricing.total(Volume((Tier(None, unit),), unit_size), q) == per_unit


@given(unit=amounts, unit_size=sizes, a=quantities, b=quantities)
def test_per_unit_is_additive_up_to_one_rounding(unit: int, unit_size: int, a: int, b: int) -> None:
    price = PerUnit(unit, unit_size)
    assert abs(pricing.total(price, a + b) - pricing.total(price, a) - pricing.total(price, b)) <= 1


@given(
    fee=st.integers(min_value=0, max_value=10**9),
    period=st.integers(min_value=1, max_value=31 * 86_400),
    cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=6),
)
def test_proration_of_a_split_period_adds_up_to_the_fee(
    fee: int, period: int, cuts: list[float]
) -> None:
    points = sorted({0, period, *(int(c * period) for c in cuts)})
    parts = [
        pricing.prorate(fee, start=a, end=b, period=period) for a, b in itertools.pairwise(points)
    ]
    assert sum(parts) == fee  # no minor unit appears or vanishes
    for (a, b), part in zip(itertools.pairwise(points), parts, strict=True):
        exact = Fraction(fee * (b - a), period)
        assert abs(part - exact) < 1
        assert part >= 0


@given(
    old=st.integers(min_value=0, max_value=10**7),
    new=st.integers(min_value=0, max_value=10**7),
    period=st.integers(min_value=1, max_value=31 * 86_400),
    at=st.floats(min_value=0, max_value=1),
)
def test_plan_change_charges_between_the_two_fees(
    old: int, new: int, period: int, at: float
) -> None:
    cut = int(at * period)
    charged = pricing.prorate(old, start=0, end=cut, period=period) + pricing.prorate(
        new, start=cut, end=period, period=period
    )
    exact = Fraction(old * cut + new * (period - cut), period)
    assert abs(charged - exact) < 2
    assert min(old, new) - 1 <= charged <= max(old, new)
