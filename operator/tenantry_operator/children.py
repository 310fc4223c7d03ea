"""The watches that wake a tenant's worker: its children, and Events about its pods.

The children are watched by the shared list-then-watch loop (tenantry/listwatch.py;
not kopf: see there for why), by the operator's label, into the runtime's cache; each change wakes
the owning tenant's worker. Events about the tenants' pods and volumes feed
failures.py: one watch per field selector, as a selector cannot ask for several
reasons at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from tenantry import contract, listwatch
from tenantry_operator import failures
from tenantry_operator.model import MANAGED_BY
from tenantry_operator.runtime import Runtime

CHILDREN = (
    listwatch.Kind("apps/v1", "StatefulSet", "statefulsets"),
    listwatch.Kind("apps/v1", "Deployment", "deployments"),
    listwatch.Kind("v1", "Service", "services"),
    listwatch.Kind("v1", "ConfigMap", "configmaps"),
    listwatch.Kind("v1", "Secret", "secrets"),
    listwatch.Kind("v1", "ServiceAccount", "serviceaccounts"),
    listwatch.Kind("v1", "ResourceQuota", "resourcequotas"),
    listwatch.Kind("v1", "LimitRange", "limitranges"),
    listwatch.Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    listwatch.Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    listwatch.Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    listwatch.Kind("batch/v1", "CronJob", "cronjobs"),
    listwatch.Kind("v1", "Namespace", "namespaces"),
)
EVENTS = listwatch.Kind("v1", "Event", "events")
STARTUP_TIMEOUT = 120  # seconds for every watch to list once


def _child_watch(
    rt: Runtime, kind: listwatch.Kind, ready: asyncio.Event
) -> Coroutine[Any, Any, None]:
    def on_event(event_type: str, obj: dict[str, Any]) -> None:
        rt.wake(
            rt.cache.observe(
                api_version=kind.api_version,
                kind=kind.kind,
                obj=obj,
                deleted=event_type == "DELETED",
            )
        )

    def on_relist(objs: list[dict[str, Any]], _version: str) -> None:
        rt.wake(rt.cache.relist(api_version=kind.api_version, kind=kind.kind, objs=objs))

    return listwatch.run(
        rt.kube.http,
        kind,
        f"{contract.LABEL_MANAGED_BY}={MANAGED_BY}",
        on_event=on_event,
        on_relist=on_relist,
        ready=ready,
    )


def _event_watch(
    rt: Runtime, field_selector: str, ready: asyncio.Event
) -> Coroutine[Any, Any, None]:
    def on_event(event_type: str, obj: dict[str, Any]) -> None:
        if event_type != "DELETED":  # an expired Event does not resolve anything
            rt.wake(rt.failed.observe(obj))

    def on_relist(objs: list[dict[str, Any]], _version: str) -> None:
        rt.wake(rt.failed.relist(objs))

    return listwatch.run(
        rt.kube.http,
        EVENTS,
        "",
        on_event=on_event,
        on_relist=on_relist,
        ready=ready,
        field_selector=field_selector,
    )


async def start(rt: Runtime) -> None:
    """Start one watch per child kind and per kind of event (tasks kept in
    ``rt.watches``); return once each has listed (cache filled)."""
    readiness = []
    for kind in CHILDREN:
        ready = asyncio.Event()
        readiness.append(ready)
        rt.watches.append(asyncio.create_task(_child_watch(rt, kind, ready)))
    for selector in failures.SELECTORS:
        ready = asyncio.Event()
        readiness.append(ready)
        rt.watches.append(asyncio.create_task(_event_watch(rt, selector, ready)))
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readiness)), timeout=STARTUP_TIMEOUT)
