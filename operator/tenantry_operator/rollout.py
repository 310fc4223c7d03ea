"""Rollout decisions for ClickHouse hosts (pure).

Each host is its own StatefulSet whose pod template carries a config hash covering what
requires restarting *that* host. New hosts are created at once (scale out); hosts whose
hash changed are updated one at a time per shard, with a bounded number of shards in
flight, and only while every other host of the shard is Ready, so each shard keeps
serving. Hosts held back keep their live spec until their turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantry_operator.model import ANNOTATION_CONFIG_HASH

Obj = dict[str, Any]
SHARD_LABEL = "tenantry.io/shard"


@dataclass(frozen=True)
class HostState:
    name: str
    shard: int
    hash: str
    ready: bool


@dataclass(frozen=True)
class RolloutPlan:
    apply: frozenset[str]  # host StatefulSets to apply now
    hold: frozenset[str]  # host StatefulSets to leave as they are (neither apply nor prune)
    pending: tuple[str, ...]  # hosts waiting for their turn (subset of hold)
    started: frozenset[str] = frozenset()  # changed hosts whose update starts now

    @property
    def in_progress(self) -> bool:
        return bool(self.pending)


def config_hash(sts: Obj) -> str:
    annotations = (
        sts.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    )
    return str(annotations.get(ANNOTATION_CONFIG_HASH, ""))


def sts_ready(sts: Obj) -> bool:
    """Rolled out and Ready: the controller saw the latest spec and every pod is updated."""
    spec, status = sts.get("spec", {}), sts.get("status") or {}
    want = int(spec.get("replicas", 1))
    if status.get("observedGeneration", 0) < sts["metadata"].get("generation", 0):
        return False
    if want == 0:
        return int(status.get("replicas", 0)) == 0
    return (
        int(status.get("readyReplicas", 0)) >= want
        and int(status.get("updatedReplicas", 0)) >= want
        and status.get("currentRevision") == status.get("updateRevision")
    )


def _state(sts: Obj) -> HostState:
    labels = sts["metadata"].get("labels") or {}
    return HostState(
        name=sts["metadata"]["name"],
        shard=int(labels.get(SHARD_LABEL, "0")),
        hash=config_hash(sts),
        ready=sts_ready(sts),
    )


def plan(desired: list[Obj], live: list[Obj], *, max_shards_in_flight: int) -> RolloutPlan:
    """Which host StatefulSets to apply now. ``desired``/``live``: host StatefulSets only."""
    live_by_name = {s["metadata"]["name"]: _state(s) for s in live}
    apply: set[str] = set()
    changed: list[HostState] = []
    for sts in desired:
        want = _state(sts)
        have = live_by_name.get(want.name)
        if have is None:
            apply.add(want.name)  # scale out: a new host starts right away
        elif have.hash != want.hash:
            changed.append(want)
        else:
            apply.add(want.name)  # same config: apply (no-op or drift repair)
    # A shard is busy while any of its hosts is not Ready (including one being rolled).
    busy = {h.shard for h in live_by_name.values() if not h.ready}
    in_flight = len(busy)
    hold: set[str] = set()
    started: set[str] = set()
    for host in sorted(changed, key=lambda h: (h.shard, h.name)):
        if host.shard in busy or in_flight >= max_shards_in_flight:
            hold.add(host.name)
            continue
        apply.add(host.name)
        started.add(host.name)
        busy.add(host.shard)
        in_flight += 1
    pending = tuple(sorted(hold))
    return RolloutPlan(frozenset(apply), frozenset(hold), pending, frozenset(started))
