"""A plan's default never makes a pod Kubernetes would refuse: an unset limit is at least
the request set, an unset request at most the limit set (normalize._resources)."""

from __future__ import annotations

from typing import Any

import pytest
from tenantry_operator import builders, normalize

from tenantry.api import quantity


def _clickhouse(resources: dict[str, Any]) -> Any:
    body = {"metadata": {"name": "t", "uid": "u"}, "spec": {"clickhouse": {"resources": resources}}}
    return normalize.tenant_model(body).clickhouse.resources


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        # starter ClickHouse defaults: cpu 500m/2, memory 2Gi/2Gi
        ({"requests": {"cpu": "4"}}, ("4", "4", "2Gi", "2Gi")),
        ({"limits": {"cpu": "200m"}}, ("200m", "200m", "2Gi", "2Gi")),
        ({"requests": {"memory": "3Gi"}}, ("500m", "2", "3Gi", "3Gi")),
        ({"limits": {"memory": "1Gi"}}, ("500m", "2", "1Gi", "1Gi")),
        ({"requests": {"cpu": "1"}}, ("1", "2", "2Gi", "2Gi")),  # within: plan limit kept
        ({}, ("500m", "2", "2Gi", "2Gi")),
    ],
)
def test_plan_defaults_give_way_to_the_values_set(
    resources: dict[str, Any], expected: tuple[str, str, str, str]
) -> None:
    res = _clickhouse(resources)
    assert (res.cpu_request, res.cpu_limit, res.memory_request, res.memory_limit) == expected
    assert quantity.parse(res.cpu_request) <= quantity.parse(res.cpu_limit)
    assert quantity.parse(res.memory_request) <= quantity.parse(res.memory_limit)


def test_the_built_container_gets_a_limit_no_lower_than_its_request() -> None:
    body = {
        "metadata": {"name": "t", "uid": "u"},
        "spec": {"clickhouse": {"resources": {"requests": {"cpu": "4", "memory": "3Gi"}}}},
    }
    [sts] = [
        o
        for o in builders.build(normalize.tenant_model(body))
        if o["metadata"]["name"] == "ch-s0-r0" and o["kind"] == "StatefulSet"
    ]
    limits = sts["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert limits == {
        "requests": {"cpu": "4", "memory": "3Gi"},
        "limits": {"cpu": "4", "memory": "3Gi"},
    }


@pytest.mark.parametrize("plan", ["starter", "growth", "enterprise"])
@pytest.mark.parametrize(
    "layout", [{}, {"shards": 3}, {"replicas": 2}, {"shards": 2, "replicas": 1}]
)
def test_the_model_takes_the_specs_effective_layout(plan: str, layout: dict[str, int]) -> None:
    """One definition of the effective shards and replicas (``TenantSpec.shards`` /
    ``.replicas``: the spec's, else the plan's preset), and Keeper exactly when the
    effective replicas exceed one."""
    from tenantry.api.tenant import TenantSpec

    spec = {"plan": plan, "clickhouse": layout}
    model = normalize.tenant_model({"metadata": {"name": "t", "uid": "u"}, "spec": spec})
    effective = TenantSpec.model_validate(spec)
    assert (model.clickhouse.shards, model.clickhouse.replicas) == (
        effective.shards,
        effective.replicas,
    )
    assert (model.keeper.replicas > 0) == (effective.replicas > 1)
