"""`needs_schema` decides from status alone; `tenant_schema` maps the model."""

from __future__ import annotations

import dataclasses
from typing import Any

from tenantry_operator.dataplane import schema_step
from tenantry_operator.model import TenantModel

from tests.unit.operator import fixtures


def _recorded(model: TenantModel) -> dict[str, Any]:
    wanted = schema_step.tenant_schema(model)
    return {
        "phase": "Ready",
        "schema": {
            "database": wanted.database,
            "retentionDays": wanted.retention_days,
            "shards": wanted.shards,
            "replicas": wanted.replicas,
            "hosts": ["ch-s0-r0-0"],
        },
    }


def test_single_node_tenant_schema() -> None:
    wanted = schema_step.tenant_schema(fixtures.model("tenant-starter"))
    assert (wanted.database, wanted.retention_days, wanted.cluster) == ("t_acme", 30, None)
    assert (wanted.shards, wanted.replicas, wanted.clustered) == (1, 1, False)


def test_clustered_tenant_schema_names_the_cluster() -> None:
    wanted = schema_step.tenant_schema(fixtures.model("tenant-sharded"))
    assert (wanted.database, wanted.cluster, wanted.shards, wanted.replicas) == (
        "t_globex",
        "tenant",
        3,
        2,
    )
    assert wanted.clustered


def test_needs_schema_when_never_provisioned() -> None:
    model = fixtures.model("tenant-starter")
    assert schema_step.needs_schema(None, model)
    assert schema_step.needs_schema({}, model)
    assert schema_step.needs_schema({"schema": "junk"}, model)


def test_no_schema_work_when_status_matches() -> None:
    for name in ("tenant-starter", "tenant-sharded"):
        model = fixtures.model(name)
        assert not schema_step.needs_schema(_recorded(model), model)


def test_needs_schema_after_retention_or_scale_change() -> None:
    model = fixtures.model("tenant-sharded")
    status = _recorded(model)
    assert schema_step.needs_schema(status, dataclasses.replace(model, retention_days=7))
    scaled = dataclasses.replace(model, clickhouse=dataclasses.replace(model.clickhouse, shards=4))
    assert schema_step.needs_schema(status, scaled)
    more_replicas = dataclasses.replace(
        model, clickhouse=dataclasses.replace(model.clickhouse, replicas=3)
    )
    assert schema_step.needs_schema(status, more_replicas)


def test_needs_schema_when_no_host_has_it_or_database_differs() -> None:
    model = fixtures.model("tenant-starter")
    status = _recorded(model)
    status["schema"]["hosts"] = []
    assert schema_step.needs_schema(status, model)
    status = _recorded(model)
    assert schema_step.needs_schema(status, dataclasses.replace(model, name="other"))


def test_result_status_and_notices() -> None:
    created = schema_step.SchemaResult(
        database="t_acme",
        retention_days=30,
        shards=1,
        replicas=1,
        created=True,
        ttl_altered=False,
        previous_ttl_days=None,
        hosts=["h1"],
    )
    assert created.summary == "created"
    assert created.status() == {
        "database": "t_acme",
        "retentionDays": 30,
        "shards": 1,
        "replicas": 1,
        "hosts": ["h1"],
    }
    assert [r for r, _ in created.notices()] == ["SchemaCreated"]
    altered = dataclasses.replace(created, created=False, ttl_altered=True, previous_ttl_days=90)
    assert altered.summary == "ttl altered"
    assert altered.notices() == [("RetentionChanged", "events retention 90 -> 30 days")]
    same = dataclasses.replace(created, created=False)
    assert same.summary == "unchanged"
    assert not same.changed
    assert same.notices() == []
    model = fixtures.model("tenant-starter")
    assert not schema_step.needs_schema({"schema": same.status()}, model)
