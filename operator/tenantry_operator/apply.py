"""apply: the only module that writes children. Server-side apply with one field manager,
skipping objects that are up to date (``diff.up_to_date``: the live object carries the
stamp of this very desired object and still holds every field we set), and pruning
objects that carry the tenant's labels but are no longer desired.

Every object is applied with its stamp (``diff.stamp``), so a desired object that lost a
field, an env var or a container is applied again, and server-side apply removes what
our field manager no longer sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity
from lightkube.core.exceptions import ApiError

from tenantry import listwatch
from tenantry_operator import diff
from tenantry_operator.kube import Kube

Obj = dict[str, Any]
T = TypeVar("T")
# Called with (apiVersion, kind, object, deleted) for every write that succeeded.
Recorder = Callable[[str, str, Obj, bool], None]

# Kinds the builders produce inside the tenant namespace, which pruning may delete.
# Secrets and PVCs are deliberately absent: they hold credentials and data.
PRUNABLE: tuple[listwatch.Kind, ...] = (
    listwatch.Kind("apps/v1", "StatefulSet", "statefulsets"),
    listwatch.Kind("apps/v1", "Deployment", "deployments"),
    listwatch.Kind("v1", "Service", "services"),
    listwatch.Kind("v1", "ConfigMap", "configmaps"),
    listwatch.Kind("v1", "ServiceAccount", "serviceaccounts"),
    listwatch.Kind("v1", "ResourceQuota", "resourcequotas"),
    listwatch.Kind("v1", "LimitRange", "limitranges"),
    listwatch.Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    listwatch.Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    listwatch.Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    listwatch.Kind("batch/v1", "CronJob", "cronjobs"),
)


class Refused(Exception):
    """The API server refused to write one of the tenant's objects (invalid, forbidden
    by an admission policy, over a quota): the reason and its words, for the status."""

    def __init__(self, obj: Obj, err: ApiError) -> None:
        status = err.status
        self.reason = "ApplyRefused"
        self.message = (
            f"Kubernetes refused {obj['kind']} {obj['metadata']['name']} "
            f"(HTTP {status.code}, {status.reason or 'error'}): {status.message}"
        )
        super().__init__(self.message)


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


# Applied after everything else, so the config, accounts and policies they use exist.
WORKLOADS = frozenset(
    {"StatefulSet", "Deployment", "CronJob", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
)
CONCURRENCY = 8  # requests in flight per tenant


async def _bounded(calls: list[Awaitable[T]]) -> list[T]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Awaitable[T]) -> T:
        async with sem:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


Key = tuple[str, str, str]  # diff.key


@dataclass(frozen=True)
class Actions:
    """What ``execute`` will do to one tenant's objects, decided without I/O (``plan``)."""

    apply: tuple[tuple[Obj, ...], tuple[Obj, ...]]  # stamped: config first, then workloads
    recreate: frozenset[Key]  # StatefulSets whose volumeClaimTemplates changed
    prune: tuple[Obj, ...]  # live objects neither desired nor kept
    unchanged: int  # desired objects already up to date: no request at all

    @property
    def writes(self) -> int:
        return sum(len(wave) for wave in self.apply) + len(self.prune)


def plan(
    *,
    desired: Iterable[Obj],
    live: dict[Key, Obj],
    keep: set[Key],
    prune: bool = True,
) -> Actions:
    """Which desired objects to apply (those not ``diff.up_to_date``, each stamped), in
    which wave, and which live objects to prune (those neither desired nor kept, and
    not already being deleted). Pure."""
    wanted: set[Key] = set(keep)
    waves: tuple[list[Obj], list[Obj]] = ([], [])
    recreate: set[Key] = set()
    unchanged = 0
    for unstamped in desired:
        obj = diff.stamp(unstamped)
        k = diff.key(obj)
        wanted.add(k)
        current = live.get(k)
        if diff.up_to_date(obj, current):
            unchanged += 1
            continue
        if obj["kind"] == "StatefulSet" and current is not None and claims_changed(obj, current):
            recreate.add(k)
        waves[obj["kind"] in WORKLOADS].append(obj)
    stale = (
        [
            o
            for k, o in live.items()
            if k not in wanted and not o["metadata"].get("deletionTimestamp")
        ]
        if prune
        else []
    )
    return Actions(
        apply=(tuple(waves[0]), tuple(waves[1])),
        recreate=frozenset(recreate),
        prune=tuple(stale),
        unchanged=unchanged,
    )


async def execute(
    kube: Kube, actions: Actions, *, live: dict[Key, Obj], record: Recorder | None = None
) -> ApplyResult:
    """Carry ``actions`` out: each wave of applies concurrently, then the prunes."""
    result = ApplyResult(unchanged=actions.unchanged)
    for wave in actions.apply:
        await _bounded(
            [
                _apply_one(kube, o, live.get(diff.key(o)), record, diff.key(o) in actions.recreate)
                for o in wave
            ]
        )
        result.applied.extend(_name(obj) for obj in wave)
    stale = actions.prune
    deleted = await _bounded(
        [
            kube.delete(
                o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")
            )
            for o in stale
        ]
    )
    for o, gone in zip(stale, deleted, strict=True):
        if gone:
            result.pruned.append(_name(o))
            if record is not None:
                record(o["apiVersion"], o["kind"], o, True)
    return result


async def _apply_one(
    kube: Kube, obj: Obj, live: Obj | None, record: Recorder | None, recreate: bool
) -> None:
    try:
        if recreate and live is not None:
            await _recreate_statefulset(kube, obj, live)
        result = await kube.apply(obj)
    except ApiError as err:
        if err.status.code in (400, 403, 404, 409, 422):  # the object, not the connection
            raise Refused(obj, err) from err
        raise
    if record is not None:  # write-through: the cache is never older than our own writes
        record(obj["apiVersion"], obj["kind"], result, False)


def _claims(sts: Obj) -> dict[str, str]:
    return {
        t["metadata"]["name"]: str(t["spec"]["resources"]["requests"]["storage"])
        for t in sts["spec"].get("volumeClaimTemplates") or []
    }


def claims_changed(desired: Obj, live: Obj) -> bool:
    """volumeClaimTemplates are immutable in a StatefulSet: a size change needs more."""
    return _claims(desired) != _claims(live)


async def _recreate_statefulset(kube: Kube, desired: Obj, live: Obj) -> None:
    """Grow the existing volumes in place, then replace the StatefulSet object while its
    pods keep running (orphan delete; the new object adopts them). Volumes only grow:
    the CRD refuses a smaller size."""
    meta = live["metadata"]
    namespace = meta["namespace"]
    replicas = int(live["spec"].get("replicas") or 0)
    sizes = _claims(desired)
    for claim, size in sizes.items():
        for ordinal in range(max(replicas, 1)):
            pvc = f"{claim}-{meta['name']}-{ordinal}"
            if await kube.get("v1", "PersistentVolumeClaim", pvc, namespace) is None:
                continue
            await kube.patch(
                "v1",
                "PersistentVolumeClaim",
                pvc,
                {"spec": {"resources": {"requests": {"storage": size}}}},
                namespace=namespace,
            )
    await kube.delete("apps/v1", "StatefulSet", meta["name"], namespace, orphan=True)

    # The delete is asynchronous; apply must not race it into a 409 or a stale object:
    # looked at every 0.1 s, for at most 100 looks (then apply goes ahead regardless).
    async def gone() -> bool:
        return await kube.get("apps/v1", "StatefulSet", meta["name"], namespace) is None

    await tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(100),
        wait=tenacity.wait_fixed(0.1),
        retry=tenacity.retry_if_result(lambda done: not done),
        retry_error_callback=lambda _state: False,
    )(gone)


async def live_children(
    kube: Kube, *, namespace: str, labels: dict[str, str]
) -> dict[tuple[str, str, str], Obj]:
    """Every prunable object of the tenant, keyed like ``diff.key`` (listed concurrently)."""
    lists = await _bounded(
        [kube.list(k.api_version, k.kind, namespace=namespace, labels=labels) for k in PRUNABLE]
    )
    out: dict[tuple[str, str, str], Obj] = {}
    for k, items in zip(PRUNABLE, lists, strict=True):
        for obj in items:
            obj.setdefault("apiVersion", k.api_version)
            obj.setdefault("kind", k.kind)
            out[diff.key(obj)] = obj
    return out
