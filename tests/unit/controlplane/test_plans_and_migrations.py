"""Plan limits and the migration file rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane import db
from controlplane.billing import catalog
from tenantry import plan_limits
from tenantry.api.plans import PRESETS, Plan
from tenantry.api.tenant import TenantSpec


def _why(org_plan: str, *, existing: int = 0, **spec: object) -> str | None:
    """The control plane's check of a new Tenant (tenants.service): the shared rule on
    the billing catalogue's limits and the spec's effective values."""
    ask = plan_limits.ask_of(TenantSpec.model_validate({"plan": "starter", **spec}))
    return plan_limits.violation(org_plan, catalog.limits_out(org_plan), ask, position=existing)


def test_plan_limits() -> None:
    assert _why("starter") is None
    assert "allows 2 tenants" in str(_why("starter", existing=2))
    assert "not available" in str(_why("starter", plan="growth"))
    assert "shards is 9" in str(_why("growth", clickhouse={"shards": 9}))
    assert "replicas is 4" in str(_why("growth", clickhouse={"replicas": 4}))
    assert _why("enterprise", plan="enterprise", clickhouse={"shards": 21}) is None
    assert "30 days" in str(_why("starter", retentionDays=31))
    assert _why("starter", retentionDays=30) is None


def test_unset_fields_are_judged_at_their_plans_preset() -> None:
    """A Tenant that leaves replicas unset asks for its plan's preset, which the
    organisation's plan may not allow: judged on that, not waved through as unset."""
    preset = PRESETS[Plan.GROWTH]
    ask = plan_limits.ask_of(TenantSpec.model_validate({"plan": "growth"}))
    assert (ask.shards, ask.replicas, ask.retention_days) == (
        preset.shards,
        preset.replicas,
        preset.retention_days,
    )
    starter = catalog.limits_out("starter")
    tight = starter.model_copy(update={"tenant_plans": ["starter", "growth"], "max_replicas": 1})
    assert preset.replicas > 1
    assert "replicas is" in str(plan_limits.violation("starter", tight, ask, position=0))


def test_shipped_migrations_are_ordered_and_named() -> None:
    found = db.discover()
    versions = [m.version for m in found]
    assert versions[:5] == [1, 2, 3, 4, 5]
    assert versions == sorted(set(versions))  # gaps allowed (0100_... for billing)
    assert all(m.sql.strip() for m in found)


def test_bad_migration_names_and_duplicates_fail(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"0001_name\.sql"):
        db.discover(tmp_path)
    (tmp_path / "1_init.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="two migrations"):
        db.discover(tmp_path)
