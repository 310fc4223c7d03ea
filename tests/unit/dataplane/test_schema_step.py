"""Which hosts the schema step provisions, from status and pods alone; `tenant_schema`
maps the model; results become status and Events."""

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
            "hosts": [h.name for h in model.clickhouse.hosts],
        },
    }


def _needs(status: dict[str, Any] | None, model: TenantModel) -> bool:
    """Some host, its pod Ready and labelled, is provisioned all the same: the recorded
    schema does not cover it."""
    return bool(schema_step.hosts_to_provision(status, model, _pods(model)))


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
    assert _needs(None, model)
    assert _needs({}, model)
    assert _needs({"schema": "junk"}, model)


def test_no_schema_work_when_status_matches() -> None:
    for name in ("tenant-starter", "tenant-sharded"):
        model = fixtures.model(name)
        assert not _needs(_recorded(model), model)


def test_needs_schema_after_retention_or_scale_change() -> None:
    model = fixtures.model("tenant-sharded")
    status = _recorded(model)
    assert _needs(status, dataclasses.replace(model, retention_days=7))
    scaled = dataclasses.replace(model, clickhouse=dataclasses.replace(model.clickhouse, shards=4))
    assert _needs(status, scaled)
    more_replicas = dataclasses.replace(
        model, clickhouse=dataclasses.replace(model.clickhouse, replicas=3)
    )
    assert _needs(status, more_replicas)


def test_needs_schema_when_no_host_has_it_or_database_differs() -> None:
    model = fixtures.model("tenant-starter")
    status = _recorded(model)
    status["schema"]["hosts"] = []
    assert _needs(status, model)
    sharded = fixtures.model("tenant-sharded")
    status = _recorded(sharded)
    status["schema"]["hosts"] = status["schema"]["hosts"][:-1]  # the last host is new
    assert _needs(status, sharded)
    status = _recorded(model)
    assert _needs(status, dataclasses.replace(model, name="other"))


def test_result_status_and_notices() -> None:
    created = schema_step.SchemaResult(
        database="t_acme",
        retention_days=30,
        shards=1,
        replicas=1,
        created=True,
        ttl_altered=False,
        previous_ttl_days=None,
        hosts=["ch-s0-r0"],
    )
    assert created.summary == "created"
    assert created.status() == {
        "database": "t_acme",
        "retentionDays": 30,
        "shards": 1,
        "replicas": 1,
        "hosts": ["ch-s0-r0"],
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
    assert not _needs({"schema": same.status()}, model)
    converted = dataclasses.replace(same, converted=True, moved_partitions=4)
    assert converted.summary == "converted"
    assert [r for r, _ in converted.notices()] == ["LayoutConverted"]
    assert "4 partition(s) moved into events_local" in converted.notices()[0][1]


def _pod(*, ready: bool = True, labelled: bool = True) -> dict[str, Any]:
    labels = {"tenantry.io/schema": "ready"} if labelled else {}
    return {
        "metadata": {"name": "x", "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def _pods(model: TenantModel, **kinds: dict[str, Any]) -> dict[str, schema_step.HostPod]:
    """Every host's pod Ready and labelled, except those named in `kinds`."""
    pods = {schema_step.pod_name(h.name): _pod() for h in model.clickhouse.hosts}
    pods.update({schema_step.pod_name(name.replace("_", "-")): p for name, p in kinds.items()})
    return {name: schema_step.pod_info(p) for name, p in pods.items()}


def test_pod_info_reads_readiness_label_and_deletion() -> None:
    assert schema_step.pod_info(_pod()) == schema_step.HostPod(ready=True, labelled=True)
    assert not schema_step.pod_info(_pod(ready=False)).ready
    assert not schema_step.pod_info(_pod(labelled=False)).labelled
    deleting = _pod()
    deleting["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z"
    assert not schema_step.pod_info(deleting).ready
    assert schema_step.pod_info({}) == schema_step.HostPod(ready=False, labelled=False)


def test_idle_tenant_provisions_no_host() -> None:
    """Recorded schema matches and every pod is labelled: no call, no write."""
    for name in ("tenant-starter", "tenant-sharded"):
        model = fixtures.model(name)
        assert schema_step.hosts_to_provision(_recorded(model), model, _pods(model)) == []


def test_a_new_host_is_provisioned_once_its_pod_is_ready() -> None:
    model = fixtures.model("tenant-sharded")  # 3 x 2
    status = _recorded(model)
    status["schema"]["hosts"].remove("ch-s2-r1")
    waiting = _pods(model, ch_s2_r1=_pod(ready=False, labelled=False))
    assert schema_step.hosts_to_provision(status, model, waiting) == []
    ready = _pods(model, ch_s2_r1=_pod(labelled=False))
    assert schema_step.hosts_to_provision(status, model, ready) == ["ch-s2-r1"]
    missing = _pods(model)
    del missing["ch-s2-r1-0"]
    assert schema_step.hosts_to_provision(status, model, missing) == []


def test_a_recreated_pod_without_the_label_is_provisioned_again() -> None:
    model = fixtures.model("tenant-sharded")
    pods = _pods(model, ch_s1_r0=_pod(labelled=False))
    assert schema_step.hosts_to_provision(_recorded(model), model, pods) == ["ch-s1-r0"]


def test_a_layout_or_retention_change_provisions_every_ready_host_first_host_first() -> None:
    model = fixtures.model("tenant-sharded")
    status = _recorded(model)
    grown = dataclasses.replace(model, clickhouse=dataclasses.replace(model.clickhouse, shards=4))
    todo = schema_step.hosts_to_provision(status, grown, _pods(grown))
    assert todo == [h.name for h in grown.clickhouse.hosts]
    assert todo[0] == "ch-s0-r0"  # where a 1 x 1 tenant's rows are
    shorter = dataclasses.replace(model, retention_days=7)
    assert len(schema_step.hosts_to_provision(status, shorter, _pods(shorter))) == 6
