"""An in-memory mirror of one custom-resource kind, kept current by a watch.

Reads of tenants and dashboards (spec and live status) are the hot path of the API;
answering them from a mirror instead of a round trip to the API server takes most of
the latency and all of the API-server load off that path. The mirror lists once,
then follows a watch from the list's resourceVersion; on any watch error it lists
again. Until it has listed, and whenever it has lost its watch, it reports itself not
synced and callers read from the API server instead.

The API's own writes go into the mirror as soon as the API server answers, so a client
always reads what it just wrote. Every update is applied only when its resourceVersion
is newer than the copy held (a late watch event never overwrites a fresher write).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from lightkube import AsyncClient

from controlplane import background

log = logging.getLogger("tenantry.controlplane.mirror")


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    code = getattr(status, "code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


class Versioned(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> dict[str, str]: ...

    @property
    def resource_version(self) -> str: ...


def newer(candidate: str, held: str) -> bool:
    """True when ``candidate`` is a later resourceVersion than ``held``.

    resourceVersions are opaque, but every API server in use encodes etcd revisions as
    integers; anything else is taken as newer (the safe choice: fresh data wins).
    """
    try:
        return int(candidate) >= int(held)
    except ValueError:
        return True


T = TypeVar("T", bound=Versioned)


class Mirror(Generic[T]):
    def __init__(self, client: AsyncClient, resource: Any, convert: Callable[[Any], T]) -> None:
        self._client = client
        self._resource = resource
        self._convert = convert
        self._kind = getattr(resource, "__name__", "resource")
        self._objects: dict[str, T] = {}
        self._gone: dict[str, str] = {}  # name -> resourceVersion of its deletion
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mirror-{self._kind}")

    async def wait_synced(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._synced.wait()
        return self.synced

    async def stop(self, *, within: float = 5.0) -> None:
        """Stop the watch loop (at most ``within`` seconds, background.stop)."""
        if self._task is not None:
            await background.stop(self._task, within=within, what=f"mirror of {self._kind}")

    def get(self, name: str) -> T | None:
        return self._objects.get(name)

    def select(self, labels: dict[str, str]) -> list[T]:
        return [
            o
            for o in self._objects.values()
            if all(o.labels.get(k) == v for k, v in labels.items())
        ]

    def put(self, obj: T) -> None:
        held = self._objects.get(obj.name)
        if held is not None and not newer(obj.resource_version, held.resource_version):
            return
        gone = self._gone.get(obj.name)
        if gone is not None and not newer(obj.resource_version, gone):
            return
        self._objects[obj.name] = obj
        self._gone.pop(obj.name, None)

    def remove(self, name: str, resource_version: str | None = None) -> None:
        held = self._objects.get(name)
        if held is None:
            return
        if resource_version is not None and not newer(resource_version, held.resource_version):
            return
        del self._objects[name]
        if resource_version is not None:
            self._gone[name] = resource_version

    async def _run(self) -> None:
        while True:
            background.check_cancelled()
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: fall back to the API server, relist
                log.warning(
                    "mirror of %s lost its watch (%s); relisting", self._kind, _describe(exc)
                )
            self._synced.clear()
            await asyncio.sleep(1.0)

    async def _list_and_watch(self) -> None:
        listing = self._client.list(self._resource)
        fresh = {}
        async for raw in listing:
            obj = self._convert(raw)
            fresh[obj.name] = obj
        version = listing.resourceVersion
        # Keep our own writes that are newer than the list; take the list for the rest.
        for name, held in self._objects.items():
            listed = fresh.get(name)
            if listed is None:
                keep = held.resource_version != version and newer(held.resource_version, version)
            else:
                keep = newer(held.resource_version, listed.resource_version)
            if keep:
                fresh[name] = held
        self._objects = fresh
        self._gone.clear()
        self._synced.set()
        async for event, raw in self._client.watch(self._resource, resource_version=version):
            obj = self._convert(raw)
            if event == "DELETED":
                self.remove(obj.name, obj.resource_version)
                self._gone[obj.name] = obj.resource_version
            else:
                self.put(obj)
