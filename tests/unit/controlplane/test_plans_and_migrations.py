"""Plan limits and the migration file rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane import db
from controlplane.orgs import plans


def _why(
    plan: str,
    *,
    existing: int = 0,
    tenant_plan: str = "starter",
    shards: int | None = None,
    replicas: int | None = None,
) -> str | None:
    return plans.tenant_violation(
        plan, existing=existing, tenant_plan=tenant_plan, shards=shards, replicas=replicas
    )


def test_plan_limits() -> None:
    assert _why("starter") is None
    assert "2 tenants" in str(_why("starter", existing=2))
    assert "not available" in str(_why("starter", tenant_plan="growth"))
    assert "shards" in str(_why("growth", shards=9))
    assert "replicas" in str(_why("growth", replicas=4))
    assert _why("enterprise", shards=64, tenant_plan="enterprise") is None


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
