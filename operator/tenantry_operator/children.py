"""The watches that wake a tenant's worker: its children, and Events about its pods.

The children are watched by the shared list-then-watch loop (tenantry/listwatch.py;
not kopf: see there for why), by the operator's label, into the runtime's cache; each change wakes
the owning tenant's worker. Events about the tenants' pods and volumes feed
failures.py: one watch per field selector, as a selector cannot ask for several
reasons at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from tenantry import contract, listwatch
from tenantry_operator import apply, failures
from tenantry_operator.builders import clickhouse
from tenantry_operator.model import LABEL_COMPONENT, MANAGED_BY
from tenantry_operator.runtime import Runtime

# What the operator builds (the kinds it may prune), plus the Secrets it generates and
# the Namespace.
CHILDREN = (
    *apply.PRUNABLE,
    listwatch.Kind("v1", "Secret", "secrets"),
    listwatch.Kind("v1", "Namespace", "namespaces"),
)
EVENTS = listwatch.Kind("v1", "Event", "events")
# The ClickHouse hosts' pods: their readiness and schema label decide which hosts the
# schema step provisions (dataplane/schema_step.py). Kept apart from the children, as
# pods are never applied or pruned by the operator.
PODS = listwatch.Kind("v1", "Pod", "pods")
POD_LABELS = f"{contract.LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}={clickhouse.COMPONENT}"
STARTUP_TIMEOUT = 120  # seconds for every watch to list once


Woken = set[str] | str | None  # the tenants a change concerns


def _watch(
    rt: Runtime,
    kind: listwatch.Kind,
    ready: asyncio.Event,
    *,
    changed: Callable[[str, dict[str, Any]], Woken],
    relisted: Callable[[list[dict[str, Any]]], Woken],
    labels: str = "",
    fields: str = "",
) -> Coroutine[Any, Any, None]:
    """One list-then-watch loop whose every change wakes the tenants it concerns."""

    def on_event(event_type: str, obj: dict[str, Any]) -> None:
        rt.wake(changed(event_type, obj))

    def on_relist(objs: list[dict[str, Any]], _version: str) -> None:
        rt.wake(relisted(objs))

    return listwatch.run(
        rt.kube.http,
        kind,
        labels,
        on_event=on_event,
        on_relist=on_relist,
        ready=ready,
        field_selector=fields,
    )


def _child_watch(
    rt: Runtime, kind: listwatch.Kind, ready: asyncio.Event, *, labels: str = ""
) -> Coroutine[Any, Any, None]:
    """The tenants' children of one kind, by the operator's label, into the cache."""
    return _watch(
        rt,
        kind,
        ready,
        changed=lambda event_type, obj: rt.cache.observe(
            api_version=kind.api_version, kind=kind.kind, obj=obj, deleted=event_type == "DELETED"
        ),
        relisted=lambda objs: rt.cache.relist(
            api_version=kind.api_version, kind=kind.kind, objs=objs
        ),
        labels=labels or f"{contract.LABEL_MANAGED_BY}={MANAGED_BY}",
    )


def _event_watch(
    rt: Runtime, field_selector: str, ready: asyncio.Event
) -> Coroutine[Any, Any, None]:
    """Events about the tenants' pods and volumes, into failures.py's records (an
    expired Event, DELETED, resolves nothing)."""
    return _watch(
        rt,
        EVENTS,
        ready,
        changed=lambda event_type, obj: None if event_type == "DELETED" else rt.failed.observe(obj),
        relisted=rt.failed.relist,
        fields=field_selector,
    )


async def start(rt: Runtime) -> None:
    """Start one watch per child kind and per kind of event (tasks kept in
    ``rt.watches``); return once each has listed (cache filled)."""
    readiness = []
    for kind in CHILDREN:
        ready = asyncio.Event()
        readiness.append(ready)
        rt.watches.append(asyncio.create_task(_child_watch(rt, kind, ready)))
    ready = asyncio.Event()
    readiness.append(ready)
    rt.watches.append(asyncio.create_task(_child_watch(rt, PODS, ready, labels=POD_LABELS)))
    for selector in failures.SELECTORS:
        ready = asyncio.Event()
        readiness.append(ready)
        rt.watches.append(asyncio.create_task(_event_watch(rt, selector, ready)))
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readiness)), timeout=STARTUP_TIMEOUT)
