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
