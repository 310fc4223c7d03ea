"""Invoice composition: proration of base fees across a plan change, usage priced by
the plan at the end of the period, line items per tier, and the catalogue's limits
coming from the one definition tenant creation enforces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.billing import catalog, invoicing, pricing
from controlplane.billing.catalog import Metric, TenantStats
from controlplane.billing.invoicing import Segment
from controlplane.orgs import plans as org_plans
from tenantry import plan_limits

NOV = pricing.parse_period("2026-11")


def test_plan_limits_are_the_ones_tenant_creation_enforces() -> None:
    for key, plan in catalog.PLANS.items():
        shared = org_plans.limits(key)
        assert plan.limits.max_tenants == shared.max_tenants
        assert plan.limits.max_shards == shared.max_shards
        assert plan.limits.max_replicas == shared.max_replicas
        assert plan.limits.tenant_plans == shared.tenant_plans


def test_aggregations_per_metric() -> None:
    stats = [
        TenantStats("a", total=10, peak=7, count=3),
        TenantStats("b", total=5, peak=5, count=1),
    ]
    assert catalog.aggregate(Metric.EVENTS_INGESTED, stats) == (15, {"a": 10, "b": 5})
    assert catalog.aggregate(Metric.STORAGE_BYTES, stats) == (12, {"a": 7, "b": 5})
    assert catalog.aggregate(Metric.DASHBOARD_QUERIES, stats) == (4, {"a": 3, "b": 1})


def test_whole_period_on_one_plan_charges_the_full_base_fee() -> None:
    draft = invoicing.build(
        period=NOV, segments=[Segment("growth", datetime(2026, 1, 1, tzinfo=UTC), None)], usage={}
    )
    assert [(line.kind, line.amount) for line in draft.lines] == [("base", 49_00)]
    assert draft.total == 49_00
    assert draft.currency == "EUR"


def test_plan_change_mid_period_prorates_both_fees_and_prices_usage_by_the_new_plan() -> None:
    change = datetime(2026, 11, 11, tzinfo=UTC)  # 10 of 30 days on growth
    draft = invoicing.build(
        period=NOV,
        segments=[
            Segment("growth", datetime(2026, 10, 5, tzinfo=UTC), change),
            Segment("enterprise", change, None),
        ],
        usage={Metric.EVENTS_INGESTED: 2_000_000, Metric.DASHBOARD_QUERIES: 0},
    )
    base = [line for line in draft.lines if line.kind == "base"]
    assert [(b.plan, b.amount) for b in base] == [("growth", 1633), ("enterprise", 33267)]
    usage = {line.metric: line for line in draft.lines if line.kind == "usage"}
    assert usage["events_ingested"].plan == "enterprise"
    assert usage["events_ingested"].amount == 2_000_000 * 2 // 1_000  # volume tier 1
    assert usage["dashboard_queries"].amount == 200_00  # flat, due without usage
    assert draft.total == sum(line.amount for line in draft.lines)


def test_graduated_usage_has_one_line_per_tier() -> None:
    draft = invoicing.build(
        period=NOV,
        segments=[Segment("growth", NOV.start, None)],
        usage={Metric.EVENTS_INGESTED: 150_000_000},
    )
    tiers = [line.tier for line in draft.lines if line.metric == "events_ingested"]
    assert tiers == [1, 2, 3]


def test_segments_outside_the_period_and_no_subscription() -> None:
    before = Segment("growth", datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
    with pytest.raises(invoicing.NoSubscription):
        invoicing.build(period=NOV, segments=[before], usage={})


@given(day=st.integers(min_value=1, max_value=29), hour=st.integers(0, 23))
def test_cancelled_at_period_end_and_started_mid_period(day: int, hour: int) -> None:
    start = datetime(2026, 11, day, hour, tzinfo=UTC)
    draft = invoicing.build(period=NOV, segments=[Segment("enterprise", start, NOV.end)], usage={})
    (base,) = [line for line in draft.lines if line.kind == "base"]
    assert base.amount == pricing.prorate(
        499_00, start=NOV.offset(start), end=NOV.seconds, period=NOV.seconds
    )
    assert 0 < base.amount <= 499_00


def test_retention_limit_of_the_billing_plan() -> None:
    def why(plan: str, days: int) -> str | None:
        ask = plan_limits.Ask(plan="starter", shards=1, replicas=1, retention_days=days)
        return plan_limits.violation(plan, catalog.limits_out(plan), ask, position=0)

    assert why("starter", 30) is None
    assert "30 days" in str(why("starter", 31))
    assert why("enterprise", 730) is None
