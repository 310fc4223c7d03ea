"""The reconcile's decisions (reconcile.plan, apply.plan), table-tested without I/O.

The live state of each case is built from the desired objects themselves, as the API
server would return them after an apply (stamped, with its own fields added): never a
hand copy."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from tenantry_operator import apply, builders, diff, normalize, reconcile
from tenantry_operator.cache import LiveState
from tenantry_operator.model import ANNOTATION_APPLIED_HASH, TenantModel

Obj = dict[str, Any]


def model(spec: Obj, name: str = "acme") -> TenantModel:
    return normalize.tenant_model({"metadata": {"name": name, "generation": 1}, "spec": spec})


def served(obj: Obj) -> Obj:
    """``obj`` applied and settled: stamped, server fields added, workloads Ready."""
    out = copy.deepcopy(diff.stamp(obj))
    out["metadata"].update(uid="u-" + obj["metadata"]["name"], resourceVersion="1", generation=1)
    if obj["kind"] == "StatefulSet":
        n = int(obj["spec"].get("replicas", 1))
        out["status"] = {
            "observedGeneration": 1,
            "replicas": n,
            "readyReplicas": n,
            "updatedReplicas": n,
            "currentRevision": "r1",
            "updateRevision": "r1",
        }
    return out


def settled(m: TenantModel) -> LiveState:
    """What exists once ``m`` was applied and every workload is Ready."""
    desired = builders.build(m)
    namespace = next(served(o) for o in desired if o["kind"] == "Namespace")
    prunable = {k.kind for k in apply.PRUNABLE}
    children = {diff.key(o): served(o) for o in desired if o["kind"] in prunable}
    return LiveState(namespace, children, set())


def decide(m: TenantModel, state: LiveState) -> reconcile.Plan:
    return reconcile.plan(m, state, max_shards_in_flight=1)


def names(objs: Any) -> set[str]:
    return {f"{o['kind']}/{o['metadata']['name']}" for o in objs}


def applied(p: reconcile.Plan) -> set[str]:
    return names(o for wave in p.children.apply for o in wave)


@dataclass(frozen=True)
class Case:
    id: str
    spec: Obj  # the Tenant's spec now
    live_from: Obj | None  # the spec the live state was settled from (None: nothing)
    expect: Callable[[reconcile.Plan], None]
    edit: Callable[[LiveState], None] | None = None  # a change to the live state


def _new(p: reconcile.Plan) -> None:
    assert names(p.namespace.apply[0]) == {f"Namespace/{p.model.namespace}"}
    kinds = [{o["kind"] for o in wave} for wave in p.children.apply]
    assert "StatefulSet" not in kinds[0]
    assert {"StatefulSet", "Deployment"} <= kinds[1]  # workloads after their config
    assert p.children.prune == ()
    assert p.children.unchanged == 0
    stamps = [
        o["metadata"]["annotations"].get(ANNOTATION_APPLIED_HASH)
        for w in p.children.apply
        for o in w
    ]
    assert all(stamps)  # every object goes out with the stamp of what it is


def _idle(p: reconcile.Plan) -> None:
    assert p.namespace.writes == 0
    assert p.children.writes == 0, applied(p) | names(p.children.prune)
    assert p.children.unchanged == len(p.desired) - 1  # all but the Namespace


def _drift(p: reconcile.Plan) -> None:
    assert applied(p) == {"Service/clickhouse"}


def _deleted_child(p: reconcile.Plan) -> None:
    assert applied(p) == {"NetworkPolicy/default-deny"}


def _stale(p: reconcile.Plan) -> None:
    assert names(p.children.prune) == {"ConfigMap/left-over"}
    assert p.children.writes == 1


def _backup_off(p: reconcile.Plan) -> None:
    assert "CronJob/backup" in names(p.children.prune)


def _scale_out(p: reconcile.Plan) -> None:
    new_hosts = {f"StatefulSet/ch-s{s}-r0" for s in (1, 2)}
    assert new_hosts <= applied(p)
    assert "StatefulSet/ch-s0-r0" not in applied(p)  # the running host is left alone


def _scale_in_refused(p: reconcile.Plan) -> None:
    assert p.model.clickhouse.shards == 2  # the live hosts are kept
    [problem] = p.problems
    assert problem.reason == "ScaleInRefused"
    assert not {o for o in p.children.prune if o["kind"] == "StatefulSet"}


def _rolling(p: reconcile.Plan) -> None:
    # a version change: one shard's hosts at a time, the others held (not pruned)
    assert p.rollout.started == {"ch-s0-r0"}
    assert p.rollout.hold == {"ch-s1-r0"}
    assert "StatefulSet/ch-s1-r0" not in applied(p) | names(p.children.prune)


def _field_lost(p: reconcile.Plan) -> None:
    assert applied(p) == {"Deployment/ingestion"}


def _quota(p: reconcile.Plan) -> None:
    assert p.refusal is not None
    assert p.refusal.reason == "QuotaExceeded"


def _grow_volume(p: reconcile.Plan) -> None:
    assert p.children.recreate == {("StatefulSet", "tenant-acme", "ch-s0-r0")}


def _drop(kind: str, name: str) -> Callable[[LiveState], None]:
    def edit(state: LiveState) -> None:
        del state.children[(kind, "tenant-acme", name)]

    return edit


def _edit_port(state: LiveState) -> None:
    state.children[("Service", "tenant-acme", "clickhouse")]["spec"]["ports"][0]["port"] = 1


def _add_stale(state: LiveState) -> None:
    state.children[("ConfigMap", "tenant-acme", "left-over")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "left-over", "namespace": "tenant-acme"},
    }


def _older_stamp(state: LiveState) -> None:
    dep = state.children[("Deployment", "tenant-acme", "ingestion")]
    dep["metadata"]["annotations"][ANNOTATION_APPLIED_HASH] = "from-an-older-desired-object"


GROWTH = {"plan": "growth"}
BACKUP = {"backup": {"bucket": "acme-backups"}}
CASES = [
    Case("new tenant: everything, config first", {}, None, _new),
    Case("settled: no write at all", {}, {}, _idle),
    Case("settled with backups: no write", BACKUP, BACKUP, _idle),
    Case("growth settled: no write", GROWTH, GROWTH, _idle),
    Case("drift: the edited object only", {}, {}, _drift, _edit_port),
    Case(
        "deleted child: re-created", {}, {}, _deleted_child, _drop("NetworkPolicy", "default-deny")
    ),
    Case("labelled object no longer desired: pruned", {}, {}, _stale, _add_stale),
    Case("backup turned off: its CronJob pruned", {}, BACKUP, _backup_off),
    Case(
        "scale out: new hosts only",
        {"clickhouse": {"shards": 3}},
        {"clickhouse": {"shards": 1}},
        _scale_out,
    ),
    Case(
        "scale in without AllowDataLoss: refused, hosts kept",
        {"clickhouse": {"shards": 1}},
        {"clickhouse": {"shards": 2}},
        _scale_in_refused,
    ),
    Case(
        "version change: one shard at a time",
        {"clickhouse": {"shards": 2, "version": "25.8"}},
        {"clickhouse": {"shards": 2}},
        _rolling,
    ),
    Case("desired object changed since applied: applied", {}, {}, _field_lost, _older_stamp),
    Case(
        "over the plan's quota: refused before anything",
        {"plan": "starter", "clickhouse": {"resources": {"requests": {"cpu": "64"}}}},
        None,
        _quota,
    ),
    Case(
        "volume grows: the StatefulSet is re-created around its pods",
        {"clickhouse": {"storage": {"size": "20Gi"}}},
        {"clickhouse": {"storage": {"size": "10Gi"}}},
        _grow_volume,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan(case: Case) -> None:
    state = LiveState() if case.live_from is None else settled(model(case.live_from))
    if case.edit is not None:
        case.edit(state)
    case.expect(decide(model(case.spec), state))


def test_plan_does_not_change_what_it_is_given() -> None:
    state = settled(model({}))
    _edit_port(state)
    before = copy.deepcopy(state)
    decide(model({}), state)
    assert state == before
