"""Pure steps of the operator: normalize, diff, rollout planning, status."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tenantry_operator import diff, normalize, observe, rollout
from tenantry_operator.model import ANNOTATION_APPLIED_HASH, ANNOTATION_CONFIG_HASH

from tenantry.internal_api import UsageBatch


def _tenant(spec: dict[str, Any], *, generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": "acme", "uid": "u-1", "generation": generation}, "spec": spec}


# -- normalize ------------------------------------------------------------------------
def test_plan_preset_fills_unset_fields() -> None:
    m = normalize.tenant_model(_tenant({"plan": "growth"}))
    assert (m.clickhouse.shards, m.clickhouse.replicas) == (2, 2)
    assert m.keeper.replicas == 3  # replicated tables need Keeper
    assert m.retention_days == 90
    assert m.namespace == "tenant-acme"
    assert m.owner.uid == "u-1"


def test_explicit_fields_override_the_preset() -> None:
    m = normalize.tenant_model(
        _tenant(
            {
                "plan": "growth",
                "retentionDays": 7,
                "clickhouse": {
                    "shards": 5,
                    "replicas": 1,
                    "resources": {"limits": {"memory": "64Gi"}},
                },
            }
        )
    )
    assert (m.clickhouse.shards, m.clickhouse.replicas) == (5, 1)
    assert m.keeper.replicas == 0  # no replication, no Keeper
    assert m.retention_days == 7
    assert m.clickhouse.resources.memory_limit == "64Gi"
    assert m.clickhouse.resources.memory_request == "8Gi"  # still from the plan


def test_hosts_enumerate_shards_by_replicas() -> None:
    m = normalize.tenant_model(_tenant({"clickhouse": {"shards": 2, "replicas": 2}}))
    assert [h.name for h in m.clickhouse.hosts] == ["ch-s0-r0", "ch-s0-r1", "ch-s1-r0", "ch-s1-r1"]


# -- diff -----------------------------------------------------------------------------
def test_contained_ignores_server_defaults() -> None:
    desired = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}},
        "spec": {"ports": [{"port": 80}]},
    }
    live = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "a",
            "namespace": "n",
            "labels": {"x": "1", "y": "2"},
            "resourceVersion": "7",
            "uid": "z",
        },
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"},
    }
    assert diff.up_to_date(desired, live)


@pytest.mark.parametrize(
    "live_change",
    [
        lambda o: o["spec"]["ports"][0].update(port=81),
        lambda o: o["metadata"]["labels"].pop("x"),
        lambda o: o["spec"]["ports"].append({"port": 90}),
    ],
)
def test_drift_is_detected(live_change: Any) -> None:
    desired = {
        "kind": "Service",
        "metadata": {"name": "a", "labels": {"x": "1"}},
        "spec": {"ports": [{"port": 80}]},
    }
    live = {
        "kind": "Service",
        "metadata": {"name": "a", "labels": {"x": "1"}},
        "spec": {"ports": [{"port": 80}]},
    }
    live_change(live)
    assert not diff.up_to_date(desired, live)


def test_missing_object_is_not_up_to_date() -> None:
    assert not diff.up_to_date({"kind": "X", "metadata": {"name": "a"}}, None)


# -- rollout --------------------------------------------------------------------------
def _sts(name: str, shard: int, hash_: str, *, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 1, "labels": {"tenantry.io/shard": str(shard)}},
        "spec": {
            "replicas": 1,
            "template": {"metadata": {"annotations": {ANNOTATION_CONFIG_HASH: hash_}}},
        },
        "status": {
            "observedGeneration": 1,
            "readyReplicas": 1 if ready else 0,
            "updatedReplicas": 1,
            "currentRevision": "a",
            "updateRevision": "a",
        },
    }


def _hosts(shards: int, replicas: int, hash_: str) -> list[dict[str, Any]]:
    return [_sts(f"ch-s{s}-r{r}", s, hash_) for s in range(shards) for r in range(replicas)]


def test_unchanged_hosts_are_all_applied() -> None:
    p = rollout.plan(_hosts(2, 2, "h1"), _hosts(2, 2, "h1"), max_shards_in_flight=1)
    assert len(p.apply) == 4
    assert not p.hold
    assert not p.in_progress


def test_changed_hosts_roll_one_per_shard_with_bounded_shards() -> None:
    p = rollout.plan(_hosts(3, 2, "new"), _hosts(3, 2, "old"), max_shards_in_flight=2)
    assert p.apply == {"ch-s0-r0", "ch-s1-r0"}
    assert p.hold == {"ch-s0-r1", "ch-s1-r1", "ch-s2-r0", "ch-s2-r1"}
    assert p.in_progress


def test_next_host_waits_until_the_previous_is_ready() -> None:
    live = _hosts(1, 2, "old")
    live[0] = _sts("ch-s0-r0", 0, "new", ready=False)  # being rolled
    p = rollout.plan(_hosts(1, 2, "new"), live, max_shards_in_flight=1)
    assert "ch-s0-r1" in p.hold
    live[0] = _sts("ch-s0-r0", 0, "new", ready=True)
    p = rollout.plan(_hosts(1, 2, "new"), live, max_shards_in_flight=1)
    assert p.apply == {"ch-s0-r0", "ch-s0-r1"}


def test_new_hosts_start_at_once() -> None:
    p = rollout.plan(_hosts(3, 1, "h"), _hosts(1, 1, "h"), max_shards_in_flight=1)
    assert p.apply == {"ch-s0-r0", "ch-s1-r0", "ch-s2-r0"}


# -- observe --------------------------------------------------------------------------
def _obs(
    spec: dict[str, Any],
    sts: dict[str, Any],
    deps: dict[str, Any],
    *,
    hold: frozenset[str] = frozenset(),
) -> observe.Observation:
    m = normalize.tenant_model(_tenant(spec))
    plan = rollout.RolloutPlan(apply=frozenset(), hold=hold, pending=tuple(sorted(hold)))
    return observe.Observation(model=m, statefulsets=sts, deployments=deps, rollout=plan)


def _dep(ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": "ingestion", "generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "availableReplicas": int(ready), "updatedReplicas": 1},
    }


def test_all_ready_gives_ready_and_keeps_transition_times() -> None:
    sts = {"ch-s0-r0": _sts("ch-s0-r0", 0, "h"), "redis": _sts("redis", 0, "h")}
    obs = _obs({}, sts, {"ingestion": _dep(True)})
    first = observe.status(obs, None)
    conds = {c["type"]: c for c in first["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert conds["Progressing"]["status"] == "False"
    assert conds["KeeperReady"]["reason"] == "NotRequired"
    assert first["hosts"] == "1/1"
    assert first["phase"] == "Ready"
    for c in first["conditions"]:
        c["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    again = observe.status(obs, first)
    assert observe.same(first, again)


def test_missing_host_is_progressing_with_a_message() -> None:
    obs = _obs(
        {"clickhouse": {"shards": 2}},
        {"ch-s0-r0": _sts("ch-s0-r0", 0, "h"), "redis": _sts("redis", 0, "h")},
        {"ingestion": _dep(True)},
    )
    st = observe.status(obs, None)
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "False"
    assert conds["ClickHouseReady"]["message"] == "1/2 created"
    assert st["phase"] == "Provisioning"
    assert st["hosts"] == "1/2"


def test_rolling_update_is_reported() -> None:
    sts = {n: _sts(n, 0, "h") for n in ("ch-s0-r0", "redis")}
    obs = _obs({}, sts, {"ingestion": _dep(True)}, hold=frozenset({"ch-s0-r0"}))
    conds = {c["type"]: c for c in observe.status(obs, None)["conditions"]}
    assert conds["Progressing"]["reason"] == "RollingUpdate"
    assert "ch-s0-r0" in conds["Progressing"]["message"]


def test_ingestion_gets_the_database_and_control_plane_it_needs() -> None:
    from tenantry_operator.builders import ingestion

    m = normalize.tenant_model(_tenant({}), controlplane_url="http://cp:8000")
    env = {e["name"]: e for e in ingestion.env(m)}
    assert env["TENANTRY_CLICKHOUSE_DATABASE"]["value"] == "t_acme" == m.database
    assert env["TENANTRY_CONTROLPLANE_URL"]["value"] == "http://cp:8000"
    ref = env["TENANTRY_INTERNAL_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "ingestion-credentials", "key": "internal-token"}
    bare = {e["name"] for e in ingestion.env(normalize.tenant_model(_tenant({})))}
    assert "TENANTRY_INTERNAL_TOKEN" not in bare


def test_usage_windows_are_aligned_and_keyed_once() -> None:
    import datetime as dt

    from tenantry_operator import usage

    m = normalize.tenant_model(_tenant({}))
    at = dt.datetime(2026, 11, 27, 12, 7, 31, tzinfo=dt.UTC)

    def wire(batch: UsageBatch) -> list[dict[str, Any]]:  # the body the server reads
        return [dict(e) for e in batch.model_dump(mode="json")["events"]]

    first = wire(
        usage.events(
            model=m, uid="u-1", status={"hostsReady": 3}, storage_bytes=1234, now=at, interval=300
        )
    )
    again = usage.events(
        model=m,
        uid="u-1",
        status={"hostsReady": 3},
        storage_bytes=99,
        now=at + dt.timedelta(seconds=100),
        interval=300,
    )
    assert UsageBatch.model_validate({"events": first}).events[0].timestamp == dt.datetime(
        2026, 11, 27, 12, 5, tzinfo=dt.UTC
    )
    assert first[0]["quantity"] == 900  # 3 hosts x 300 s
    assert [e["idempotency_key"] for e in first] == [e.idempotency_key for e in again.events]
    assert first[1] == {**first[1], "metric": "storage_bytes", "quantity": 1234}
    later = wire(
        usage.events(
            model=m,
            uid="u-1",
            status={"hostsReady": 3},
            storage_bytes=None,
            now=at + dt.timedelta(seconds=300),
            interval=300,
        )
    )
    assert later[0]["idempotency_key"] != first[0]["idempotency_key"]
    assert len(later) == 1  # no storage sample, no storage event
    suspended = normalize.tenant_model(_tenant({"suspend": True}))
    [hosts] = wire(
        usage.events(
            model=suspended,
            uid="u",
            status={"hostsReady": 3},
            storage_bytes=None,
            now=at,
            interval=300,
        )
    )
    assert hosts["quantity"] == 0


def _deployment(env: list[dict[str, str]], containers: int = 1, **spec: Any) -> dict[str, Any]:
    pod = {
        "containers": [
            {"name": f"c{i}", "image": "x", "env": env if i == 0 else []} for i in range(containers)
        ]
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n", "annotations": {"a": "1"}},
        "spec": {**spec, "template": {"spec": pod}},
    }


def _as_served(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: our object plus its defaults and bookkeeping."""
    served = copy.deepcopy(obj)
    served["metadata"].update(resourceVersion="9", uid="u", generation=3)
    served["spec"].setdefault("revisionHistoryLimit", 10)
    served["status"] = {"replicas": 1}
    return served


_OLD_ENV = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # a field removed (the HPA takes spec.replicas over)
        (_deployment(_OLD_ENV, replicas=0), _deployment(_OLD_ENV)),
        # an env var removed
        (_deployment(_OLD_ENV), _deployment(_OLD_ENV[:1])),
        # a container removed
        (_deployment(_OLD_ENV, containers=2), _deployment(_OLD_ENV, containers=1)),
        # an annotation removed
        (_deployment(_OLD_ENV), {**_deployment(_OLD_ENV), "metadata": {"name": "d"}}),
    ],
    ids=["field", "env-var", "container", "annotation"],
)
def test_what_the_desired_object_lost_is_applied(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    live = _as_served(diff.stamp(before))
    assert diff.up_to_date(diff.stamp(before), live)  # unchanged: no write
    assert not diff.up_to_date(diff.stamp(after), live)  # lost something: applied again


def test_the_stamp_ignores_itself_and_key_order() -> None:
    obj = _deployment(_OLD_ENV, replicas=2)
    stamped = diff.stamp(obj)
    assert stamped["metadata"]["annotations"][ANNOTATION_APPLIED_HASH] == diff.applied_hash(obj)
    assert diff.stamp(stamped) == stamped  # stamping twice changes nothing
    assert obj["metadata"]["annotations"] == {"a": "1"}  # the input is left alone
    reordered = json.loads(json.dumps(obj, sort_keys=True))
    reordered["spec"] = dict(reversed(list(reordered["spec"].items())))
    assert diff.applied_hash(reordered) == diff.applied_hash(obj)
    changed = _deployment(_OLD_ENV, replicas=3)
    assert diff.applied_hash(changed) != diff.applied_hash(obj)


def test_a_live_object_without_our_stamp_is_applied_once() -> None:
    """Objects applied before stamps existed: one apply adds the stamp, then none."""
    obj = _deployment(_OLD_ENV)
    unstamped_live = _as_served(obj)
    assert not diff.up_to_date(diff.stamp(obj), unstamped_live)
    assert diff.up_to_date(diff.stamp(obj), _as_served(diff.stamp(obj)))


def test_the_status_patch_removes_what_the_status_no_longer_has() -> None:
    before = {"phase": "Ready", "backup": {"count": 2, "lastError": "boom"}, "gone": 1}
    after = {"phase": "Ready", "backup": {"count": 2}, "conditions": [{"type": "Ready"}]}
    assert observe.merge_patch(before, after) == {
        "phase": "Ready",
        "backup": {"count": 2, "lastError": None},
        "conditions": [{"type": "Ready"}],
        "gone": None,
    }
    assert observe.merge_patch(None, after) == after
