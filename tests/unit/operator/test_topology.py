"""Config, DDL and Keeper agree for every layout: 1x1, Nx1, 1xM, NxM (pure code).

The rule (README, "Where the schema's DDL runs"): the schema runs on each host,
never ON CLUSTER; Keeper runs exactly when shards have replicas; cluster.xml carries
`<zookeeper>` exactly when Keeper runs; a Replicated engine appears in the DDL only
then. So no layout renders DDL that its config cannot serve.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from tenantry_operator import builders, normalize
from tenantry_operator.builders import clickhouse, keeper
from tenantry_operator.dataplane import dashboards, schema_step

from tenantry.clickhouse import layout, schema
from tenantry.dashboards import panels

LAYOUTS = [(1, 1), (3, 1), (1, 2), (2, 3)]


def _model(shards: int, replicas: int, *, keeper_nodes: int | None = None) -> Any:
    spec: dict[str, Any] = {
        "plan": "enterprise",
        "clickhouse": {"shards": shards, "replicas": replicas},
    }
    if keeper_nodes is not None:
        spec["keeper"] = {"replicas": keeper_nodes}
    body = {"metadata": {"name": "acme", "uid": "u", "generation": 1}, "spec": spec}
    return normalize.tenant_model(body)


def _ddl(model: Any) -> list[str]:
    """Every statement the operator may run on a host of this layout."""
    wanted = schema_step.tenant_schema(model)
    statements = [*schema.schema_statements(wanted), schema.modify_ttl(wanted)]
    statements.append(
        schema.materialized_view(
            wanted, name="v", select="SELECT 1 AS x FROM t.events_local", order_by="x"
        )
    )
    return statements


@pytest.mark.parametrize(("shards", "replicas"), LAYOUTS)
def test_keeper_runs_exactly_when_shards_have_replicas(shards: int, replicas: int) -> None:
    model = _model(shards, replicas)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in builders.build(model)}
    keeper_objects = {k for k in kinds if k[1].startswith("keeper")}
    assert (model.keeper.replicas > 0) is (replicas > 1)
    assert bool(keeper_objects) is (replicas > 1)
    if replicas > 1:
        assert ("StatefulSet", "keeper") in keeper_objects


@pytest.mark.parametrize(("shards", "replicas"), LAYOUTS)
def test_cluster_xml_names_keeper_exactly_when_keeper_runs(shards: int, replicas: int) -> None:
    model = _model(shards, replicas)
    root = ET.fromstring(clickhouse.cluster_xml(model))  # noqa: S314 - the builder's output
    zookeeper = root.find("zookeeper")
    assert (zookeeper is not None) is keeper.enabled(model)
    if zookeeper is not None:
        hosts = [n.findtext("host") for n in zookeeper.findall("node")]
        assert hosts == keeper.node_hosts(model)
    cluster = root.find(f"remote_servers/{model.cluster_name}")
    assert cluster is not None
    shard_elems = cluster.findall("shard")
    assert len(shard_elems) == shards
    assert all(len(s.findall("replica")) == replicas for s in shard_elems)


@pytest.mark.parametrize(("shards", "replicas"), LAYOUTS)
def test_no_layout_renders_ddl_its_config_cannot_serve(shards: int, replicas: int) -> None:
    """ON CLUSTER needs Keeper (distributed_ddl) on every layout, so it is never
    rendered; a Replicated engine needs Keeper, so only where Keeper runs."""
    model = _model(shards, replicas)
    ddl = _ddl(model)
    config = ET.fromstring(clickhouse.cluster_xml(model))  # noqa: S314 - the builder's output
    has_keeper = config.find("zookeeper") is not None
    assert not any("ON CLUSTER" in s for s in ddl)
    assert any("Replicated" in s for s in ddl) is has_keeper
    # the dashboards' views: ON CLUSTER only where distributed_ddl is configured
    views = schema_step.tenant_schema(model)
    distributed_ddl = config.find("distributed_ddl") is not None
    assert distributed_ddl is has_keeper
    if dashboards.views_supported(views):
        owner = panels.ViewOwner("d", "p", "h")
        view = dashboards.create_view_sql(views, name="mv", select="SELECT 1", owner=owner)
        assert ("ON CLUSTER" in view) is distributed_ddl
        assert ("Replicated" in view) is has_keeper
    else:
        assert replicas == 1
        assert shards > 1  # N x 1: refused as a panel error, never rendered
    wanted = schema_step.tenant_schema(model)
    distributed = schema.distributed_table(wanted)
    assert (distributed is not None) is (shards * replicas > 1)
    if distributed is not None:  # the Distributed table names the cluster cluster.xml defines
        assert f"Distributed('{model.cluster_name}'," in distributed


def test_an_explicit_keeper_size_applies_only_with_replicas() -> None:
    assert _model(2, 1, keeper_nodes=5).keeper.replicas == 0
    assert _model(2, 2, keeper_nodes=5).keeper.replicas == 5
    assert _model(2, 2).keeper.replicas == 3


@pytest.mark.parametrize(("shards", "replicas"), LAYOUTS)
def test_a_new_host_converges_in_the_statements_of_its_layout(shards: int, replicas: int) -> None:
    """What the operator runs on a host that holds nothing: exactly schema_statements
    (after the database), decided by layout.next_step."""
    wanted = schema_step.tenant_schema(_model(shards, replicas))
    engines: dict[str, str] = {}
    ran = []
    while (step := layout.next_step(wanted, layout.Observed(dict(engines)))) is not None:
        assert step.op == "create"
        ran.append(step.sql)
        engines[step.table] = step.engine
        assert len(ran) < 10
    assert ran == schema.schema_statements(wanted)[1:]
