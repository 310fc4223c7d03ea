"""build: the tenant model -> every Kubernetes object the tenant should have.

Pure (apart from reading the templates): no API calls, no clock, no randomness, so the
same model always gives the same list, in the same order. The apply step relies on
that for "zero writes when nothing changed" and prunes whatever carries our labels but
is not in this list. The order is the order objects can be created in: namespace and
its limits first, then accounts and policies, config before the workloads reading it.

Each component has its own module (``builders.clickhouse.statefulsets(model)``), so
apply, observe and the rollout planner can ask for one kind without building all.
"""

from __future__ import annotations

from tenantry_operator import model as m
from tenantry_operator.builders import (
    backup,
    clickhouse,
    common,
    ingestion,
    keeper,
    namespace,
    network,
    rbac,
    redis,
)

Manifest = common.Manifest
COMPONENTS = (namespace, rbac, network, keeper, clickhouse, redis, ingestion, backup)


def build(model: m.TenantModel) -> list[Manifest]:
    """All desired objects of a tenant, in creation order."""
    return [obj for component in COMPONENTS for obj in component.objects(model)]


__all__ = [
    "COMPONENTS",
    "Manifest",
    "backup",
    "build",
    "clickhouse",
    "common",
    "ingestion",
    "keeper",
    "namespace",
    "network",
    "rbac",
    "redis",
]
