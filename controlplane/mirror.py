"""An in-memory mirror of one custom-resource kind, kept current by a watch.

Reads of tenants and dashboards (spec and live status) are the hot path of the API;
answering them from a mirror instead of a round trip to the API server takes most of
the latency and all of the API-server load off that path. The mirror is fed by the
shared list-then-watch loop (``tenantry.listwatch``, the operator's too): a list, then
a watch from the list's resourceVersion, resumed from the last version seen when the
connection breaks and listed again only when that version is too old (410). Until it
has listed, and from a failure until its watch is current again, it reports itself not
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
from tenantry import listwatch

log = logging.getLogger("tenantry.controlplane.mirror")


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
    def __init__(
        self,
        client: AsyncClient,
        kind: listwatch.Kind,
        convert: Callable[[dict[str, Any]], T],
    ) -> None:
        self._client = client
        self._watched = kind
        self._convert = convert
        self._kind = kind.kind
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
        await listwatch.run(
            listwatch.http_of(self._client),
            self._watched,
            on_event=self._event,
            on_relist=self._relist,
            on_synced=self._synced_now,
            logger=log,
        )

    def _synced_now(self, synced: bool) -> None:
        if synced:
            self._synced.set()
        else:
            self._synced.clear()

    def _relist(self, items: list[dict[str, Any]], version: str) -> None:
        fresh = {}
        for raw in items:
            obj = self._convert(raw)
            fresh[obj.name] = obj
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

    def _event(self, event: str, raw: dict[str, Any]) -> None:
        obj = self._convert(raw)
        if event == "DELETED":
            self.remove(obj.name, obj.resource_version)
            self._gone[obj.name] = obj.resource_version
        else:
            self.put(obj)
