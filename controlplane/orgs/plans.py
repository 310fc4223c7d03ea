"""Organisation plans and their limits (pure), checked before any CR is written."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrgPlan(StrEnum):
    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class Limits:
    max_tenants: int
    tenant_plans: frozenset[str]
    max_shards: int
    max_replicas: int
    max_dashboards: int


LIMITS: dict[OrgPlan, Limits] = {
    OrgPlan.STARTER: Limits(2, frozenset({"starter"}), 2, 2, 10),
    OrgPlan.GROWTH: Limits(10, frozenset({"starter", "growth"}), 8, 3, 100),
    OrgPlan.ENTERPRISE: Limits(100, frozenset({"starter", "growth", "enterprise"}), 64, 5, 1000),
}


def limits(plan: str) -> Limits:
    return LIMITS[OrgPlan(plan)]


def tenant_violation(
    plan: str, *, existing: int, tenant_plan: str, shards: int | None, replicas: int | None
) -> str | None:
    """Why the org's plan forbids this tenant, or None when it fits."""
    lim = limits(plan)
    if existing >= lim.max_tenants:
        return f"the {plan} plan allows {lim.max_tenants} tenants; upgrade the organisation"
    if tenant_plan not in lim.tenant_plans:
        return f"tenant plan {tenant_plan!r} is not available on the {plan} plan"
    if shards is not None and shards > lim.max_shards:
        return f"the {plan} plan allows at most {lim.max_shards} shards"
    if replicas is not None and replicas > lim.max_replicas:
        return f"the {plan} plan allows at most {lim.max_replicas} replicas"
    return None
