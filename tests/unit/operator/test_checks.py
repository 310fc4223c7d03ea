"""The operator's own checks before it applies anything: the built stack against the plan's
ResourceQuota, and volumes against the live StatefulSets (checks.py)."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenantry_operator import builders, checks, normalize, reconcile

from tenantry.api import quantity
from tenantry.api.plans import PRESETS, Plan
from tests.unit.operator import fixtures

Obj = dict[str, Any]


def _built(spec: dict[str, Any]) -> tuple[list[Obj], str]:
    model = normalize.tenant_model({"metadata": {"name": "t", "uid": "u"}, "spec": spec})
    return builders.build(model), model.plan


def _quota(spec: dict[str, Any]) -> checks.Refusal | None:
    objs, plan = _built(spec)
    return checks.quota(objs, plan=plan)


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_examples_fit_their_plan(name: str) -> None:
    model = fixtures.model(name)
    assert checks.quota(builders.build(model), plan=model.plan) is None


@pytest.mark.parametrize("plan", list(Plan))
def test_every_plan_with_its_defaults_fits(plan: Plan) -> None:
    assert _quota({"plan": plan.value}) is None
    assert _quota({"plan": plan.value, "backup": {"bucket": "backups"}}) is None


def test_more_cpu_in_total_than_the_quota_is_refused_naming_the_fields() -> None:
    """Each value is within the plan, the sum is not: 10 hosts x 2 cores on starter."""
    refusal = _quota({"clickhouse": {"shards": 10}})
    assert refusal is not None
    assert refusal.reason == "QuotaExceeded"
    assert "limits.cpu: the stack needs 21600m but the starter plan's quota is 16" in (
        refusal.message
    )
    assert "ClickHouse 10 x 2 [spec.clickhouse.resources.limits.cpu]" in refusal.message
    assert "choose a larger spec.plan" in refusal.message


def test_volumes_in_total_over_the_storage_quota_are_refused() -> None:
    refusal = _quota({"clickhouse": {"shards": 4, "storage": {"size": "60Gi"}}})
    assert refusal is not None
    assert "requests.storage: the stack needs 242Gi but the starter plan's quota is 200Gi" in (
        refusal.message
    )
    assert "ClickHouse 4 x 60Gi [spec.clickhouse.storage.size]" in refusal.message


def test_the_autoscaler_maximum_and_rollout_surge_count() -> None:
    """The autoscaler would create pods the quota refuses: counted at its maximum, plus
    the pod a rolling update adds."""
    assert _quota({"ingestion": {"autoscaling": {"enabled": True, "maxReplicas": 10}}}) is None
    refusal = _quota({"ingestion": {"autoscaling": {"enabled": True, "maxReplicas": 40}}})
    assert refusal is not None
    assert "pods: the stack needs 43 but the starter plan's quota is 30" in refusal.message
    assert "ingestion 41 (autoscaling.maxReplicas + 1 during rollouts)" in refusal.message


def test_a_suspended_tenant_must_fit_when_it_resumes() -> None:
    """Suspended, the workloads run no pods (the built objects alone would pass), but its
    volumes stay and it must fit when it comes back: checked as if resumed."""
    spec: Obj = {"suspend": True, "clickhouse": {"shards": 10}}
    body = {"metadata": {"name": "t", "uid": "u"}, "spec": spec}
    model = normalize.tenant_model(body)
    desired = builders.build(model)
    assert checks.quota(desired, plan=model.plan) is None
    refusal = reconcile.check_before_apply(model, desired, {})
    assert refusal is not None
    assert "limits.cpu: the stack needs 21600m" in refusal.message
    assert "requests.storage" in refusal.message


def test_a_stack_without_a_quota_is_not_checked() -> None:
    objs, plan = _built({"clickhouse": {"shards": 10}})
    without = [o for o in objs if o["kind"] != "ResourceQuota"]
    assert checks.quota(without, plan=plan) is None


@settings(max_examples=60, deadline=None)
@given(
    plan=st.sampled_from(list(Plan)),
    shards=st.integers(1, 12),
    replicas=st.integers(1, 3),
    cpu_milli=st.integers(100, 20000),
)
def test_the_check_agrees_with_the_sum_of_the_built_pods(
    plan: Plan, shards: int, replicas: int, cpu_milli: int
) -> None:
    """Independent arithmetic: add up every built pod's cpu limit, compare with the
    quota; the check refuses exactly when the sum is over."""
    cpu = f"{cpu_milli}m"
    spec = {
        "plan": plan.value,
        "clickhouse": {
            "shards": shards,
            "replicas": replicas,
            "resources": {"limits": {"cpu": cpu}},
        },
    }
    objs, _ = _built(spec)
    total = Fraction(0)
    for obj in objs:
        if obj["kind"] == "StatefulSet":
            pods, template = obj["spec"]["replicas"], obj["spec"]["template"]
        elif obj["kind"] == "Deployment":
            pods, template = obj["spec"]["replicas"] + 1, obj["spec"]["template"]
        else:
            continue
        for container in template["spec"]["containers"]:
            total += pods * quantity.parse(container["resources"]["limits"]["cpu"])
    refusal = checks.quota(objs, plan=plan.value)
    over = total > quantity.parse(PRESETS[plan].quota_cpu)
    assert (refusal is not None and "limits.cpu" in refusal.message) == over


# -- volumes against what runs ----------------------------------------------------------
def _live(objs: list[Obj]) -> dict[tuple[str, str, str], Obj]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): copy.deepcopy(o)
        for o in objs
        if o["kind"] == "StatefulSet"
    }


def test_a_volume_smaller_than_the_live_one_is_refused() -> None:
    live = _live(_built({"clickhouse": {"storage": {"size": "100Gi"}}})[0])
    desired, _ = _built({"clickhouse": {"storage": {"size": "50Gi"}}})
    refusal = checks.volumes(desired, live)
    assert refusal is not None
    assert refusal.reason == "VolumeChangeRefused"
    assert "volume data of ch-s0-r0 is 100Gi and the spec makes it 50Gi" in refusal.message
    assert "set spec.clickhouse.storage.size to at least 100Gi" in refusal.message


def test_a_volume_moving_to_another_class_is_refused() -> None:
    live = _live(_built({"redis": {"storage": {"storageClassName": "fast"}}})[0])
    desired, _ = _built({})
    refusal = checks.volumes(desired, live)
    assert refusal is not None
    assert "has storageClassName fast and the spec asks for (cluster default)" in refusal.message


def test_growing_volumes_and_new_hosts_pass() -> None:
    live = _live(_built({"clickhouse": {"storage": {"size": "100Gi"}}})[0])
    desired, _ = _built({"clickhouse": {"shards": 2, "storage": {"size": "150Gi"}}})
    assert checks.volumes(desired, live) is None
