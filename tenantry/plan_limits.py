"""The plan-limit rule: does a Tenant fit its organisation's plan? (pure)

One definition, used by the control plane before it writes a Tenant
(``controlplane.tenants.service``) and by the operator before it reconciles one
(``tenantry_operator.org_limits``: a CR written with kubectl, or an organisation moved to
a smaller plan). Both judge the *effective* values: the tenant plan's preset where the
spec leaves a field unset, so an enterprise Tenant that leaves ``shards`` unset asks
for the enterprise preset's shards, not for none.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.api.plans import PRESETS
from tenantry.api.tenant import TenantSpec
from tenantry.internal_api import LimitsOut


@dataclass(frozen=True)
class Ask:
    """What a Tenant asks of its organisation's plan."""

    plan: str  # the tenant's size plan (spec.plan)
    shards: int
    replicas: int
    retention_days: int


def ask_of(spec: TenantSpec) -> Ask:
    """The effective values of ``spec``: the preset of its plan where a field is unset
    (what the operator builds: ``normalize.tenant_model`` resolves them the same way)."""
    return Ask(
        plan=spec.plan.value,
        shards=spec.shards,
        replicas=spec.replicas,
        retention_days=spec.retention_days or PRESETS[spec.plan].retention_days,
    )


def violation(org_plan: str, limits: LimitsOut, ask: Ask, *, position: int) -> str | None:
    """Why the Tenant does not fit, in words that name the field, or None when it fits.

    ``position``: how many of the organisation's Tenants come before this one (a new
    Tenant: all that exist)."""
    if position >= limits.max_tenants:
        return (
            f"the organisation's {org_plan} plan allows {limits.max_tenants} tenants and "
            f"{position} older ones exist; delete one or upgrade the plan"
        )
    if ask.plan not in limits.tenant_plans:
        allowed = ", ".join(sorted(limits.tenant_plans))
        return (
            f"spec.plan {ask.plan!r} is not available on the {org_plan} plan (allowed: {allowed})"
        )
    if ask.shards > limits.max_shards:
        return (
            f"spec.clickhouse.shards is {ask.shards}; the {org_plan} plan allows at most "
            f"{limits.max_shards}"
        )
    if ask.replicas > limits.max_replicas:
        return (
            f"spec.clickhouse.replicas is {ask.replicas}; the {org_plan} plan allows at most "
            f"{limits.max_replicas}"
        )
    if ask.retention_days > limits.retention_days:
        return (
            f"spec.retentionDays is {ask.retention_days}; the {org_plan} plan keeps data "
            f"at most {limits.retention_days} days"
        )
    return None
