"""observe: compute a Tenant's status from its live workloads (pure).

Conditions follow the Kubernetes conventions: ``lastTransitionTime`` only moves when a
condition's status changes, and every condition carries the generation it was computed
from, so an unchanged tenant produces an identical status and no write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tenantry.contract import service_host
from tenantry_operator.builders import clickhouse, ingestion, redis
from tenantry_operator.conditions import Cond, set_conditions
from tenantry_operator.model import TenantModel
from tenantry_operator.rollout import RolloutPlan, sts_ready

Obj = dict[str, Any]
MESSAGE_LIMIT = 4000  # a condition's message, when several problems are joined


@dataclass(frozen=True)
class Observation:
    """What reconcile saw and decided, the input of ``status``."""

    model: TenantModel
    statefulsets: dict[str, Obj]
    deployments: dict[str, Obj]
    rollout: RolloutPlan
    problems: tuple[Cond, ...] = field(default=())  # extra Degraded causes


def deployment_ready(dep: Obj) -> bool:
    spec, st = dep.get("spec", {}), dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    if st.get("observedGeneration", 0) < dep["metadata"].get("generation", 0):
        return False
    return int(st.get("availableReplicas", 0)) >= want and int(st.get("updatedReplicas", 0)) >= want


def _component(name: str, objs: list[Obj | None], ready: Any, total: int) -> tuple[Cond, int]:
    present = [o for o in objs if o is not None]
    n_ready = sum(1 for o in present if ready(o))
    if total == 0:
        return Cond(name, True, "NotRequired", f"{name} is not run for this tenant"), 0
    if len(present) < total:
        return Cond(name, False, "Creating", f"{len(present)}/{total} created"), n_ready
    if n_ready < total:
        return Cond(name, False, "NotReady", f"{n_ready}/{total} ready"), n_ready
    return Cond(name, True, "Ready", f"{n_ready}/{total} ready"), n_ready


def conditions(obs: Observation) -> tuple[list[Cond], int]:
    """Component and summary conditions, and the number of ClickHouse hosts ready."""
    m = obs.model
    hosts = [obs.statefulsets.get(h.name) for h in m.clickhouse.hosts]
    ch, hosts_ready = _component("ClickHouseReady", list(hosts), sts_ready, len(m.clickhouse.hosts))
    keeper, _ = _component(
        "KeeperReady", [obs.statefulsets.get("keeper")], sts_ready, 1 if m.keeper.replicas else 0
    )
    redis, _ = _component("RedisReady", [obs.statefulsets.get("redis")], sts_ready, 1)
    ingestion, _ = _component(
        "IngestionReady", [obs.deployments.get("ingestion")], deployment_ready, 1
    )
    parts = [keeper, ch, redis, ingestion]
    all_ready = all(c.ok for c in parts)
    if obs.rollout.in_progress:
        progressing = Cond(
            "Progressing",
            True,
            "RollingUpdate",
            "hosts waiting for their turn: " + ", ".join(obs.rollout.pending),
        )
    elif not all_ready:
        progressing = Cond(
            "Progressing",
            True,
            "Reconciling",
            "; ".join(f"{c.type}: {c.message}" for c in parts if not c.ok),
        )
    else:
        progressing = Cond("Progressing", False, "Stable", "all components are up to date")
    if obs.problems:
        message = "; ".join(p.message for p in obs.problems)
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 20] + f" (+{len(obs.problems) - 1} more)"
        degraded = Cond("Degraded", True, obs.problems[0].reason, message)
    else:
        degraded = Cond("Degraded", False, "AsExpected", "no problems")
    if m.suspend:
        ready = Cond("Ready", False, "Suspended", "workloads are scaled to zero")
    elif all_ready and not obs.rollout.in_progress:
        ready = Cond("Ready", True, "Ready", f"{hosts_ready} ClickHouse hosts ready")
    else:
        ready = Cond("Ready", False, progressing.reason, progressing.message)
    return [ready, progressing, degraded, *parts], hosts_ready


def _phase(conds: dict[str, Cond], model: TenantModel) -> str:
    if model.suspend:
        return "Suspended"
    if conds["Degraded"].ok:
        return "Degraded"
    if conds["Ready"].ok:
        return "Ready"
    return "Provisioning"


def status(obs: Observation, previous: Obj | None) -> Obj:
    """The full status object; timestamps kept from ``previous`` where nothing changed."""
    m = obs.model
    conds, hosts_ready = conditions(obs)
    before = list((previous or {}).get("conditions") or [])
    ours = {c.type for c in conds}
    rendered = set_conditions([], conds, generation=m.generation, since=before) + [
        c
        for c in before
        if c.get("type") not in ours  # set by someone else: kept
    ]
    total = len(m.clickhouse.hosts)
    ns = m.namespace
    return {
        "observedGeneration": m.generation,
        "phase": _phase({c.type: c for c in conds}, m),
        "conditions": rendered,
        "namespace": ns,
        "shards": m.clickhouse.shards,
        "replicas": m.clickhouse.replicas,
        "hostsReady": hosts_ready,
        "hostsTotal": total,
        "hosts": f"{hosts_ready}/{total}",
        "endpoints": {
            "clickhouse": f"{service_host(ns, clickhouse.SERVICE)}:{clickhouse.HTTP_PORT}",
            "ingestion": f"{service_host(ns, ingestion.SERVICE)}:{ingestion.PORT}",
            "redis": f"{service_host(ns, redis.SERVICE)}:{redis.PORT}",
        },
    }


def merge_patch(before: Obj | None, after: Obj) -> Obj:
    """The JSON merge patch that turns ``before`` into ``after``: a key ``after`` no
    longer has is sent as null (a merge patch keeps what it does not name), in nested
    objects too; lists are replaced whole. Without it a field cleared in the status
    (``backup.lastError`` once a backup succeeds) would stay stored, differ from what
    is computed, and be written again on every reconcile."""
    out = dict(after)
    for key, old in (before or {}).items():
        if key not in after:
            out[key] = None
        elif isinstance(old, dict) and isinstance(after[key], dict):
            out[key] = merge_patch(old, after[key])
    return out


def same(a: Obj | None, b: Obj) -> bool:
    """Equal statuses (what decides whether to write)."""
    return (a or {}) == b


def refused(previous: Obj | None, *, reason: str, message: str, generation: int) -> Obj:
    """The status of a Tenant the operator refuses to reconcile (e.g. over its plan).

    A stack that exists (the status names its namespace) keeps its other fields and
    turns Degraded; a Tenant with nothing created yet is phase ``Refused``, not Ready."""
    prev = dict(previous or {})
    exists = bool(prev.get("namespace"))
    changes = [Cond("Degraded", True, reason, message)]
    if not exists:
        changes.append(Cond("Ready", False, reason, message))
    conds = set_conditions(prev.get("conditions"), changes, generation=generation)
    first = {"Ready": 0, "Progressing": 1, "Degraded": 2}  # then the components, as before
    rendered = sorted(conds, key=lambda c: first.get(c["type"], 3))
    return {
        **prev,
        "observedGeneration": generation,
        "phase": "Degraded" if exists else "Refused",
        "conditions": rendered,
    }
