"""Names more than one component computes agree, because each comes from the one
definition in ``tenantry.contract`` (issue 13: the ingestion service once derived the
tenant database as ``<tenant>`` while the operator and the control plane used
``t_<tenant>``; only a test-only URL override hid it).

Each check compares what the components actually produce (the operator's rendered
objects and URLs, the control plane's URL, the ingestion settings from the env the
operator renders), never a restated literal.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from tenantry_operator import builders, normalize, observe, rollout
from tenantry_operator.dataplane import connect, schema_step

from controlplane.dashboards import repository
from ingestion.settings import from_env
from tenantry import contract

NAMES = ["a", "acme", "acme-prod", "x-1-y", "1st"]


def _service(objects: list[dict[str, Any]], name: str) -> tuple[str, dict[str, int]]:
    (svc,) = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == name]
    meta = svc["metadata"]
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    return f"{meta['name']}.{meta['namespace']}.svc.cluster.local", ports


@pytest.mark.parametrize("tenant", NAMES)
def test_the_operator_and_the_control_plane_dial_the_rendered_clickhouse_service(
    tenant: str,
) -> None:
    model = normalize.tenant_model({"metadata": {"name": tenant}, "spec": {}})
    host, ports = _service(builders.build(model), contract.CLICKHOUSE_SERVICE)
    rendered = f"{host}:{ports['http']}"
    operator_url = urlsplit(connect.clickhouse_url(model, "pw", override=None))
    controlplane_url = urlsplit(repository.clickhouse_url(tenant, "pw"))
    assert f"{operator_url.hostname}:{operator_url.port}" == rendered
    assert f"{controlplane_url.hostname}:{controlplane_url.port}" == rendered


@pytest.mark.parametrize("tenant", NAMES)
def test_the_three_components_use_one_tenant_database(tenant: str) -> None:
    model = normalize.tenant_model({"metadata": {"name": tenant}, "spec": {}})
    (deployment,) = [
        o
        for o in builders.build(model)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "ingestion"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value", "secret") for v in container["env"]}
    env["TENANTRY_INGEST_KEYS"] = "0" * 64
    # the env var naming the database is the operator's convenience, not the rule:
    # without it (a standalone ingestion) the same database must come out
    without = {k: v for k, v in env.items() if k != "TENANTRY_CLICKHOUSE_DATABASE"}
    databases = {
        "operator schema": schema_step.tenant_schema(model).database,
        "ingestion (pod env)": from_env(env).database,
        "ingestion (standalone)": from_env(without).database,
        "contract": contract.tenant_database(tenant),
    }
    assert len(set(databases.values())) == 1, databases
    assert databases["contract"] != tenant  # `<tenant>` was the defect


def test_the_status_endpoints_are_the_rendered_services() -> None:
    model = normalize.tenant_model({"metadata": {"name": "acme"}, "spec": {}})
    objects = builders.build(model)
    plan = rollout.RolloutPlan(apply=frozenset(), hold=frozenset(), pending=())
    status = observe.status(
        observe.Observation(model=model, statefulsets={}, deployments={}, rollout=plan), None
    )
    for name, port in (("clickhouse", "http"), ("ingestion", "http"), ("redis", "redis")):
        host, ports = _service(objects, name)
        assert status["endpoints"][name] == f"{host}:{ports[port]}", name
