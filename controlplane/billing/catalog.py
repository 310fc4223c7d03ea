"""The metered metrics and the plan catalogue (pure data plus aggregation rules).

Plans are code, not rows: a price change is a reviewed commit, and every finalized
invoice stores its own lines, so changing a price never rewrites history.

One definition of limits: the tenant limits that tenant creation enforces (max
tenants, shards, replicas, tenant plans) live in ``controlplane.orgs.plans.LIMITS``;
the billing plans here *read* them from there instead of restating them, and add the
limits only billing knows (retention days, events per month). The plan keys are the
same ``OrgPlan`` values, and a subscription change writes the org's ``plan`` column,
so the limits enforced at tenant creation always follow the subscribed plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from controlplane.billing.pricing import Flat, Graduated, PerUnit, Price, Tier, Volume, validate
from controlplane.orgs import plans as org_plans

# The metrics are the usage payload's (an internal-API contract shared with the operator
# and the ingestion pods), re-exported here for the billing code.
from tenantry.internal_api import LimitsOut
from tenantry.internal_api import Metric as Metric


class Aggregation(StrEnum):
    SUM = "sum"
    """Sum of quantities over the period (counters reported as deltas)."""
    MAX = "max"
    """Per tenant the largest sample of the period, summed over tenants (gauges)."""
    COUNT = "count"
    """Number of events, whatever their quantity (one event per occurrence)."""


@dataclass(frozen=True)
class MetricSpec:
    aggregation: Aggregation
    unit: str
    description: str


METRICS: dict[Metric, MetricSpec] = {
    Metric.EVENTS_INGESTED: MetricSpec(Aggregation.SUM, "events", "events ingested"),
    Metric.BYTES_INGESTED: MetricSpec(Aggregation.SUM, "bytes", "bytes ingested"),
    Metric.STORAGE_BYTES: MetricSpec(Aggregation.MAX, "bytes", "peak storage (sampled)"),
    Metric.CLICKHOUSE_HOST_HOURS: MetricSpec(
        Aggregation.SUM, "host-seconds", "ClickHouse host time (reported in host-seconds)"
    ),
    Metric.DASHBOARD_QUERIES: MetricSpec(Aggregation.COUNT, "queries", "dashboard queries"),
}


@dataclass(frozen=True)
class TenantStats:
    """Raw per-tenant statistics of one metric over one period (from the database)."""

    tenant: str
    total: int
    peak: int
    count: int


def aggregate(metric: Metric, stats: Iterable[TenantStats]) -> tuple[int, dict[str, int]]:
    """(billable quantity, per-tenant quantities) of ``metric`` with its aggregation."""
    how = METRICS[metric].aggregation
    per_tenant = {
        s.tenant: s.total
        if how is Aggregation.SUM
        else s.peak
        if how is Aggregation.MAX
        else s.count
        for s in stats
    }
    return sum(per_tenant.values()), per_tenant


@dataclass(frozen=True)
class PlanLimits:
    max_tenants: int
    max_shards: int
    max_replicas: int
    max_dashboards: int
    tenant_plans: frozenset[str]
    retention_days: int
    events_per_month: int


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    currency: str
    base_fee: int
    prices: Mapping[Metric, Price]
    limits: PlanLimits = field(compare=False)


GB = 1_000_000_000
HOUR = 3_600


def _limits(key: org_plans.OrgPlan, *, retention_days: int, events_per_month: int) -> PlanLimits:
    shared = org_plans.limits(key.value)  # the one definition tenant creation enforces
    return PlanLimits(
        max_tenants=shared.max_tenants,
        max_shards=shared.max_shards,
        max_replicas=shared.max_replicas,
        max_dashboards=shared.max_dashboards,
        tenant_plans=shared.tenant_plans,
        retention_days=retention_days,
        events_per_month=events_per_month,
    )


PLANS: dict[str, Plan] = {
    p.key: p
    for p in (
        Plan(
            key=org_plans.OrgPlan.STARTER.value,
            name="Starter",
            currency="EUR",
            base_fee=0,
            prices={
                Metric.EVENTS_INGESTED: Graduated(
                    (Tier(1_000_000, 0), Tier(None, 5)), unit_size=1_000
                ),
                Metric.BYTES_INGESTED: PerUnit(10, unit_size=GB),
                Metric.STORAGE_BYTES: PerUnit(25, unit_size=GB),
                Metric.CLICKHOUSE_HOST_HOURS: PerUnit(8, unit_size=HOUR),
                Metric.DASHBOARD_QUERIES: PerUnit(1, unit_size=100),
            },
            limits=_limits(
                org_plans.OrgPlan.STARTER, retention_days=30, events_per_month=10_000_000
            ),
        ),
        Plan(
            key=org_plans.OrgPlan.GROWTH.value,
            name="Growth",
            currency="EUR",
            base_fee=49_00,
            prices={
                Metric.EVENTS_INGESTED: Graduated(
                    (
                        Tier(10_000_000, 0),
                        Tier(100_000_000, 3, flat_amount=5_00),
                        Tier(None, 2),
                    ),
                    unit_size=1_000,
                ),
                Metric.BYTES_INGESTED: PerUnit(8, unit_size=GB),
                Metric.STORAGE_BYTES: Volume(
                    (Tier(100 * GB, 20), Tier(1_000 * GB, 15), Tier(None, 10)), unit_size=GB
                ),
                Metric.CLICKHOUSE_HOST_HOURS: PerUnit(6, unit_size=HOUR),
                Metric.DASHBOARD_QUERIES: PerUnit(1, unit_size=1_000),
            },
            limits=_limits(
                org_plans.OrgPlan.GROWTH, retention_days=180, events_per_month=500_000_000
            ),
        ),
        Plan(
            key=org_plans.OrgPlan.ENTERPRISE.value,
            name="Enterprise",
            currency="EUR",
            base_fee=499_00,
            prices={
                Metric.EVENTS_INGESTED: Volume(
                    (Tier(1_000_000_000, 2), Tier(None, 1)), unit_size=1_000
                ),
                Metric.BYTES_INGESTED: PerUnit(5, unit_size=GB),
                Metric.STORAGE_BYTES: Volume(
                    (Tier(10_000 * GB, 8, flat_amount=100_00), Tier(None, 5)), unit_size=GB
                ),
                Metric.CLICKHOUSE_HOST_HOURS: PerUnit(4, unit_size=HOUR),
                Metric.DASHBOARD_QUERIES: Flat(200_00),
            },
            limits=_limits(
                org_plans.OrgPlan.ENTERPRISE, retention_days=730, events_per_month=10_000_000_000
            ),
        ),
    )
}

for _plan in PLANS.values():
    for _price in _plan.prices.values():
        validate(_price)
assert set(PLANS) == {p.value for p in org_plans.OrgPlan}, "one billing plan per org plan"


def plan(key: str) -> Plan:
    """The plan ``key``; KeyError for an unknown one."""
    return PLANS[key]


def limits_out(plan_key: str) -> LimitsOut:
    """The limits of plan ``plan_key`` as the internal API and the plan-limit rule
    (``tenantry.plan_limits``) take them."""
    lim = plan(plan_key).limits
    return LimitsOut(
        max_tenants=lim.max_tenants,
        max_shards=lim.max_shards,
        max_replicas=lim.max_replicas,
        max_dashboards=lim.max_dashboards,
        tenant_plans=sorted(lim.tenant_plans),
        retention_days=lim.retention_days,
        events_per_month=lim.events_per_month,
    )
