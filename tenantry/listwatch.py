"""The one list-then-watch loop, shared by the operator and the control plane.

The operator watches the tenants' children (and Warning Events) into its cache
(``tenantry_operator.handlers``); the control plane mirrors the Tenant and Dashboard
resources for its reads (``controlplane.mirror``). Each used to have its own loop, and
they disagreed: the mirror relisted after every broken connection (a full list of every
Tenant each time the API server ended a watch), waited a fixed second whatever the
failure, and asked for no bookmarks; the operator resumed, backed off, and asked for
bookmarks. Settled here, following the API's contract:

- **list** (in pages of ``PAGE``) for a consistent snapshot and its resourceVersion,
  handed to ``on_relist(items, version)``;
- **watch** from that version with bookmarks (``allowWatchBookmarks``: the server sends
  the current version now and then, so a resume rarely finds its version too old),
  each event to ``on_event(type, object)``; the server ends each watch after
  ``WATCH_SECONDS`` and the loop watches again from the last version seen;
- on **410 Gone** (the version is too old; as the status or as an ``ERROR`` event) list
  again at once, and ``on_relist`` replaces what was known;
- on a **broken connection** or any other failure resume from the last version seen,
  after a backoff through tenacity: 1 s doubling up to 15 s, from 1 s again after a
  watch that ended normally;
- ``on_synced(False)`` when the loop may have missed events (a failure, a 410), and
  ``on_synced(True)`` once it is current again (a list, or a resumed watch the server
  accepted): the control plane's mirror reads from the API server meanwhile.

Every object is decoded once into a dict (msgspec) over the API server's plain HTTP
watch (the httpx2 client lightkube holds, with its server, TLS and credentials): for
thousands of children, kopf's per-object machinery or lightkube's models cost a fifth
of the operator's CPU and most of its peak memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import msgspec
import tenacity
from lightkube import AsyncClient

Obj = dict[str, Any]
OnEvent = Callable[[str, Obj], None]  # (ADDED | MODIFIED | DELETED, object)
OnRelist = Callable[[list[Obj], str], None]  # (every object, the list's resourceVersion)
OnSynced = Callable[[bool], None]

log = logging.getLogger("tenantry.listwatch")
_DECODE = msgspec.json.Decoder(dict[str, Any])
PAGE = 500
WATCH_SECONDS = 300  # the server ends each watch after this; we resume from the last rv
FIRST_DELAY = 1.0
MAX_DELAY = 15.0


class Gone(Exception):
    """The resourceVersion is too old: list again."""


@dataclass(frozen=True)
class Kind:
    api_version: str  # "v1", "apps/v1", "tenantry.io/v1alpha1"
    kind: str
    plural: str

    @property
    def path(self) -> str:
        """The collection's path, across namespaces (or cluster-scoped)."""
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/{self.plural}"


def http_of(client: AsyncClient) -> httpx.AsyncClient:
    """The configured HTTP connection (server, TLS, credentials) of a lightkube client,
    for the raw list and watch requests here; lightkube keeps it on its generic client."""
    conn: httpx.AsyncClient = client._client._client
    return conn


def _selectors(selector: str, field_selector: str) -> dict[str, str]:
    params = {"labelSelector": selector} if selector else {}
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


async def list_all(
    http: httpx.AsyncClient, kind: Kind, selector: str = "", field_selector: str = ""
) -> tuple[list[Obj], str]:
    """Every object of ``kind`` matching the label ``selector`` and ``field_selector``
    (paged) and the list's version."""
    items: list[Obj] = []
    params = {**_selectors(selector, field_selector), "limit": str(PAGE)}
    while True:
        resp = await http.get(kind.path, params=params)
        if resp.status_code == 410:  # a continue token that expired: start again
            raise Gone()
        resp.raise_for_status()
        body = _DECODE.decode(resp.content)
        for item in body.get("items") or []:
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
            items.append(item)
        meta = body.get("metadata") or {}
        token = meta.get("continue")
        if not token:
            return items, str(meta.get("resourceVersion") or "")
        params = {**params, "continue": token}


async def watch_once(
    http: httpx.AsyncClient,
    kind: Kind,
    selector: str,
    version: str,
    on_event: OnEvent,
    field_selector: str = "",
    *,
    on_accepted: Callable[[], None] | None = None,
    watch_seconds: int = WATCH_SECONDS,
) -> str:
    """One watch request from ``version``; returns the last version seen.
    ``on_accepted`` is called once the server has accepted the request."""
    params = {
        "watch": "true",
        **_selectors(selector, field_selector),
        "resourceVersion": version,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": str(watch_seconds),
    }
    timeout = httpx.Timeout(10.0, read=watch_seconds + 30.0)
    async with http.stream("GET", kind.path, params=params, timeout=timeout) as resp:
        if resp.status_code == 410:
            raise Gone()
        resp.raise_for_status()
        if on_accepted is not None:
            on_accepted()
        async for line in resp.aiter_lines():
            if not line:
                continue
            event = _DECODE.decode(line)
            kind_of_event = event.get("type")
            obj = event.get("object") or {}
            if kind_of_event == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise httpx.HTTPError(f"watch error: {obj.get('message')}")
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind_of_event == "BOOKMARK":
                continue
            obj.setdefault("apiVersion", kind.api_version)
            obj.setdefault("kind", kind.kind)
            on_event(str(kind_of_event), obj)
    return version


@dataclass(kw_only=True)
class _Loop:
    http: httpx.AsyncClient
    kind: Kind
    selector: str
    field_selector: str
    on_event: OnEvent
    on_relist: OnRelist
    on_synced: OnSynced
    ready: asyncio.Event | None
    log: logging.Logger
    watch_seconds: int
    version: str | None = None  # None: list (again) first
    synced: bool = field(default=False)

    def _set_synced(self, synced: bool) -> None:
        if synced != self.synced:
            self.synced = synced
            self.on_synced(synced)

    async def round(self) -> None:
        """List if needed, then one watch request (to its normal end)."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # a cancellation a library swallowed
            raise asyncio.CancelledError
        try:
            if self.version is None:
                items, version = await list_all(
                    self.http, self.kind, self.selector, self.field_selector
                )
                self.on_relist(items, version)
                self.version = version
                self._set_synced(True)
                if self.ready is not None:
                    self.ready.set()
            self.version = await watch_once(
                self.http,
                self.kind,
                self.selector,
                self.version,
                self.on_event,
                self.field_selector,
                on_accepted=lambda: self._set_synced(True),
                watch_seconds=self.watch_seconds,
            )
        except Gone:
            self.log.info("watch of %s expired; listing again", self.kind.plural)
            self.version = None
            self._set_synced(False)
        except Exception:
            self._set_synced(False)
            raise

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self.log.warning(
            "watch of %s failed (%s); retrying in %.1f s",
            self.kind.plural,
            f"{type(err).__name__}: {err}"[:300],
            delay,
        )


async def run(
    http: httpx.AsyncClient,
    kind: Kind,
    selector: str = "",
    *,
    on_event: OnEvent,
    on_relist: OnRelist,
    on_synced: OnSynced = lambda _synced: None,
    ready: asyncio.Event | None = None,
    field_selector: str = "",
    logger: logging.Logger = log,
    watch_seconds: int = WATCH_SECONDS,
) -> None:
    """List and watch ``kind`` until cancelled; never raises otherwise. ``ready`` is set
    after the first listing."""
    loop = _Loop(
        http=http,
        kind=kind,
        selector=selector,
        field_selector=field_selector,
        on_event=on_event,
        on_relist=on_relist,
        on_synced=on_synced,
        ready=ready,
        log=logger,
        watch_seconds=watch_seconds,
    )
    while True:
        # A fresh backoff for each watch request: one that ended normally resets it.
        async for attempt in tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=FIRST_DELAY, max=MAX_DELAY),
            retry=tenacity.retry_if_exception_type(Exception),  # never a cancellation
            before_sleep=loop.before_sleep,
            reraise=True,
        ):
            with attempt:
                await loop.round()
