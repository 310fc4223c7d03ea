"""Dashboard status rendering, the tenant-unavailable outcome and view DDL (no engine)."""

from __future__ import annotations

import dataclasses

import pytest
from tenantry_operator.conditions import Cond
from tenantry_operator.dataplane import dashboards, schema_step

from tenantry.dashboards import panels
from tests.unit.operator import fixtures


def test_unavailable_when_tenant_is_missing_keeps_last_panels() -> None:
    previous = [{"id": "a", "valid": True, "message": ""}]
    outcome = dashboards.unavailable(tenant_name="acme", tenant_exists=False, previous=previous)
    assert outcome.panels == previous
    assert outcome.panels[0] is not previous[0]
    ready, valid = outcome.conditions
    assert (ready.type, ready.ok, ready.reason) == ("Ready", False, "TenantNotFound")
    assert "Tenant acme does not exist" in ready.message
    assert (valid.type, valid.ok) == ("Valid", None)
    assert [(n.reason, n.warning) for n in outcome.notices] == [("TenantNotFound", True)]
    status = outcome.status(generation=2, previous=None)
    assert [c["status"] for c in status["conditions"]] == ["False", "Unknown"]


def test_unavailable_when_tenant_is_not_ready() -> None:
    outcome = dashboards.unavailable(tenant_name="acme", tenant_exists=True, previous=[])
    assert outcome.conditions[0].reason == "TenantNotReady"
    assert "not Ready" in outcome.conditions[0].message


def test_status_keeps_transition_time_until_the_state_changes() -> None:
    outcome = dashboards.DashboardOutcome(
        panels=[{"id": "a", "valid": True, "message": ""}],
        conditions=[Cond("Ready", True, "Ready", "1 panels ready")],
    )
    first = outcome.status(generation=1, previous=None)
    old = dict(first)
    old["conditions"] = [{**first["conditions"][0], "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    again = outcome.status(generation=1, previous=old)
    assert again["conditions"][0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert again["panelsValid"] == "1/1"
    outcome.conditions = [Cond("Ready", False, "InvalidPanels", "x")]
    changed = outcome.status(generation=2, previous=old)
    assert changed["conditions"][0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    assert changed["observedGeneration"] == 2


def test_view_sql_single_node_populates() -> None:
    schema = schema_step.tenant_schema(fixtures.model("tenant-starter"))
    owner = panels.ViewOwner("d", "p", "abc")
    sql = dashboards.create_view_sql(
        schema, name="mv_d_p", select="SELECT 1 AS x FROM events", owner=owner
    )
    assert sql.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS `t_acme`.`mv_d_p`\n")
    assert "ENGINE = MergeTree ORDER BY tuple() POPULATE\n" in sql
    assert sql.endswith(f"COMMENT '{panels.view_comment(owner)}'")
    assert (
        dashboards.drop_view_sql(schema, "mv_d_p") == "DROP VIEW IF EXISTS `t_acme`.`mv_d_p` SYNC"
    )


def test_view_sql_on_a_cluster_is_replicated_without_populate() -> None:
    schema = schema_step.tenant_schema(fixtures.model("tenant-sharded"))
    sql = dashboards.create_view_sql(
        schema, name="mv_d_p", select="SELECT 1", owner=panels.ViewOwner("d", "p", "h")
    )
    assert " ON CLUSTER `tenant`" in sql
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/t_globex/mv_d_p', '{replica}')" in sql
    assert "POPULATE" not in sql
    assert dashboards.drop_view_sql(schema, "mv_d_p").endswith("ON CLUSTER `tenant` SYNC")


def test_no_view_ddl_on_shards_without_replicas() -> None:
    """N x 1 runs no Keeper, so no ON CLUSTER: views are refused, never rendered."""
    model = fixtures.model("tenant-sharded")
    flat = dataclasses.replace(model, clickhouse=dataclasses.replace(model.clickhouse, replicas=1))
    schema = schema_step.tenant_schema(flat)
    assert not dashboards.views_supported(schema)
    with pytest.raises(ValueError, match="materialized views"):
        dashboards.create_view_sql(
            schema, name="mv_d_p", select="SELECT 1", owner=panels.ViewOwner("d", "p", "h")
        )
    assert "ON CLUSTER" not in dashboards.drop_view_sql(schema, "mv_d_p")


def test_tenant_ready_needs_clickhouse_and_schema() -> None:
    ready_conditions = [{"type": "ClickHouseReady", "status": "True"}]
    schema = {"database": "t_acme", "hosts": ["h"]}
    assert dashboards.tenant_ready({"conditions": ready_conditions, "schema": schema})
    assert not dashboards.tenant_ready(None)
    assert not dashboards.tenant_ready({"conditions": ready_conditions})
    assert not dashboards.tenant_ready(
        {"conditions": [{"type": "ClickHouseReady", "status": "False"}], "schema": schema}
    )
    assert not dashboards.tenant_ready(
        {"conditions": ready_conditions, "schema": {**schema, "hosts": []}}
    )
