"""apply: the only module that writes children. Server-side apply with one field manager,
skipping objects whose live state already contains the desired one, and pruning objects
that carry the tenant's labels but are no longer desired.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tenantry_operator import diff
from tenantry_operator.kube import Kube

Obj = dict[str, Any]

# Kinds the builders produce inside the tenant namespace, which pruning may delete.
# Secrets and PVCs are deliberately absent: they hold credentials and data.
PRUNABLE: tuple[tuple[str, str], ...] = (
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("batch/v1", "CronJob"),
)


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    unchanged: int = 0
    pruned: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.pruned)


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


async def sync(
    kube: Kube,
    *,
    desired: Iterable[Obj],
    live: dict[tuple[str, str, str], Obj],
    keep: set[tuple[str, str, str]],
    prune: bool = True,
) -> ApplyResult:
    """Apply what differs; prune live objects (from ``live``) neither desired nor kept."""
    result = ApplyResult()
    wanted: set[tuple[str, str, str]] = set(keep)
    for obj in desired:
        k = diff.key(obj)
        wanted.add(k)
        if diff.up_to_date(obj, live.get(k)):
            result.unchanged += 1
            continue
        await kube.apply(obj)
        result.applied.append(_name(obj))
    if prune:
        for k, obj in live.items():
            if k in wanted or obj["metadata"].get("deletionTimestamp"):
                continue
            meta = obj["metadata"]
            if await kube.delete(
                obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")
            ):
                result.pruned.append(_name(obj))
    return result


async def live_children(
    kube: Kube, *, namespace: str, labels: dict[str, str]
) -> dict[tuple[str, str, str], Obj]:
    """Every prunable object of the tenant, keyed like ``diff.key``."""
    out: dict[tuple[str, str, str], Obj] = {}
    for api_version, kind in PRUNABLE:
        for obj in await kube.list(api_version, kind, namespace=namespace, labels=labels):
            obj.setdefault("apiVersion", api_version)
            obj.setdefault("kind", kind)
            out[diff.key(obj)] = obj
    return out
