"""The pydantic models accept the examples and refuse what the CRD refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tenantry.api.dashboard import DashboardSpec
from tenantry.api.plans import PRESETS
from tenantry.api.tenant import MAX_HOSTS, Plan, ReclaimPolicy, TenantSpec

REPO = Path(__file__).resolve().parents[2]
MODELS: dict[str, type[TenantSpec] | type[DashboardSpec]] = {
    "Tenant": TenantSpec,
    "Dashboard": DashboardSpec,
}


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_parse(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    MODELS[doc["kind"]].model_validate(doc["spec"])


def test_defaults_and_camel_case() -> None:
    spec = TenantSpec.model_validate(
        {"retentionDays": 30, "clickhouse": {"scaleInPolicy": "AllowDataLoss"}}
    )
    assert spec.plan is Plan.STARTER
    assert spec.reclaim_policy is ReclaimPolicy.RETAIN
    assert spec.retention_days == 30
    assert spec.clickhouse.shards is None  # the plan decides
    assert spec.model_dump(by_alias=True, exclude_none=True)["retentionDays"] == 30


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"clickhouse": {"shards": 0}}, "shards"),
        ({"clickhouse": {"replicas": 6}}, "replicas"),
        ({"plan": "platinum"}, "plan"),
        ({"clickhouse": {"shard": 2}}, "shard"),
        ({"backup": {"bucket": "My_Bucket"}}, "bucket"),
        ({"clickhouse": {"storage": {"size": "lots"}}}, "size"),
    ],
)
def test_tenant_spec_rejects(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TenantSpec.model_validate(spec)
    assert field in str(err.value)


def test_dashboard_requires_panels_and_tenant() -> None:
    with pytest.raises(ValidationError) as err:
        DashboardSpec.model_validate({"title": "x"})
    text = str(err.value)
    assert "tenantRef" in text
    assert "panels" in text


def test_time_range_from_alias() -> None:
    spec = DashboardSpec.model_validate(
        {
            "tenantRef": {"name": "acme"},
            "title": "t",
            "timeRange": {"from": "now-1h"},
            "panels": [{"id": "a", "title": "A", "sql": "SELECT 1"}],
        }
    )
    assert spec.time_range.from_ == "now-1h"
    assert spec.model_dump(by_alias=True)["timeRange"]["from"] == "now-1h"


@pytest.mark.parametrize("plan", list(Plan))
def test_the_host_cap_counts_the_plans_preset_for_an_unset_dimension(plan: Plan) -> None:
    """shards x replicas <= MAX_HOSTS on the effective values: setting only one of them
    cannot pass the cap through the other's preset (enterprise + shards 64 = 192 hosts)."""
    preset = PRESETS[plan]
    fits = MAX_HOSTS // preset.replicas
    spec = TenantSpec.model_validate({"plan": plan.value, "clickhouse": {"shards": fits}})
    assert (spec.shards, spec.replicas) == (fits, preset.replicas)
    if preset.replicas > 1:
        with pytest.raises(ValidationError, match=rf"{fits + 1} x {preset.replicas} = "):
            TenantSpec.model_validate({"plan": plan.value, "clickhouse": {"shards": fits + 1}})
    with pytest.raises(ValidationError, match=f"at most {MAX_HOSTS} hosts"):
        TenantSpec.model_validate({"plan": plan.value, "clickhouse": {"shards": 64, "replicas": 2}})
    assert TenantSpec.model_validate({"plan": plan.value}).shards == preset.shards
