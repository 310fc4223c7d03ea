"""Panel queries carry the tenant plan's reader limits, and its quota's end is the
plan's limit (issue 14, item 3).

The reader's settings profile pins each limit between 1 and the plan's value
(users.xml), so what the control plane sends must never exceed the plan; the control
plane's own settings may only lower it. ``test_privileges`` runs the clause on the
engine against the rendered profile.
"""

from __future__ import annotations

import itertools

import pytest

from controlplane.dashboards import params, service
from controlplane.dashboards.service import panel_limits
from controlplane.errors import PlanLimitExceeded
from controlplane.settings import Settings
from tenantry.api.plans import PRESETS, Plan
from tenantry.api.tenant import AutoscalingSpec, IngestionSpec
from tenantry.clickhouse.client import ClickHouseError


@pytest.mark.parametrize("plan", list(Plan))
def test_unset_caps_send_the_plans_limits(plan: Plan) -> None:
    limits = panel_limits(Settings(), {"plan": plan.value})
    reader = PRESETS[plan].reader
    assert limits.max_execution_seconds == reader.max_execution_time_s
    assert limits.max_result_rows == reader.max_result_rows
    assert limits.readonly == 2


def test_caps_lower_the_plan_and_never_raise_it() -> None:
    growth = PRESETS[Plan.GROWTH].reader
    low = Settings(panel_max_execution_seconds=5, panel_max_result_rows=10)
    assert panel_limits(low, {"plan": "growth"}).max_execution_seconds == 5
    assert panel_limits(low, {"plan": "growth"}).max_result_rows == 10
    high = Settings(panel_max_execution_seconds=10**6, panel_max_result_rows=10**9)
    assert panel_limits(high, {"plan": "growth"}).max_execution_seconds == (
        growth.max_execution_time_s
    )
    assert panel_limits(high, {"plan": "growth"}).max_result_rows == growth.max_result_rows


def test_a_spec_without_a_plan_or_with_an_unknown_one_gets_the_smallest() -> None:
    starter = PRESETS[Plan.STARTER].reader
    for spec in ({}, {"plan": "platinum"}):
        assert panel_limits(Settings(), spec).max_execution_seconds == starter.max_execution_time_s


def test_every_plan_gives_more_than_the_one_below() -> None:
    ordered = [PRESETS[p].reader for p in (Plan.STARTER, Plan.GROWTH, Plan.ENTERPRISE)]
    for small, large in itertools.pairwise(ordered):
        assert large.max_execution_time_s >= small.max_execution_time_s
        assert large.queries_per_hour >= small.queries_per_hour
        assert large.max_result_rows >= small.max_result_rows


def _maximum(schema: object) -> int:
    """The largest ``maximum`` anywhere in a field's JSON schema (also under anyOf)."""
    if isinstance(schema, dict):
        found = [_maximum(v) for v in schema.values()]
        return max([int(schema.get("maximum", 0)), *found])
    if isinstance(schema, list):
        return max([0, *(_maximum(v) for v in schema)])
    return 0


def test_the_writer_quota_never_throttles_the_most_ingestion_pods_a_tenant_may_run() -> None:
    """Every ingestion pod inserts at most once a flush (one second at the least the
    writer waits); the most pods the CRD allows, twice over, fit in the quota."""
    autoscaled = AutoscalingSpec.model_json_schema(by_alias=False)["properties"]["max_replicas"]
    fixed = IngestionSpec.model_json_schema(by_alias=False)["properties"]["replicas"]
    pods = max(_maximum(autoscaled), _maximum(fixed))
    assert pods >= 100
    for plan in Plan:
        assert PRESETS[plan].writer.queries_per_minute >= 2 * 60 * pods, plan


def test_the_readers_quota_running_out_is_the_plans_limit() -> None:
    error = ClickHouseError.from_message(
        "Code: 201. DB::Exception: Quota for user `reader` for 3600s has been exceeded:"
        " queries: 10001/10000. (QUOTA_EXCEEDED)"
    )
    assert error.code == 201
    refused = service._query_failed(error, params.Query(sql="SELECT 1", params={}, sources={}))
    assert isinstance(refused, PlanLimitExceeded)
    assert "plan" in str(refused)
