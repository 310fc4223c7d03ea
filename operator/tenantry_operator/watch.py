"""Watches of the tenants' children that feed the cache and wake the owning tenant.

One list-then-watch loop per child kind, over the API server's plain HTTP watch, every
object decoded once into a dict (msgspec) and handed to ``on_event``. kopf's own event
machinery (a worker task, queue and handler bookkeeping per object) is kept for the
Tenant and Dashboard resources, which need its handlers; for thousands of children whose
only purpose is to update a cache and set an event it cost a fifth of the operator's
CPU and most of its peak memory.

The loop follows the API's contract: list (in pages) for a consistent snapshot and its
resourceVersion, then watch from there with bookmarks; on ``410 Gone`` (the version
is too old) list again and let ``on_relist`` drop what vanished in between; on a
broken connection resume from the last version seen, with a capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import msgspec

Obj = dict[str, Any]
OnEvent = Callable[[str, Obj], None]  # (ADDED | MODIFIED | DELETED, object)
OnRelist = Callable[[list[Obj]], None]

log = logging.getLogger(__name__)
_DECODE = msgspec.json.Decoder(dict[str, Any])
PAGE = 500
WATCH_SECONDS = 300  # the server ends each watch after this; we resume from the last rv


class Gone(Exception):
    """The resourceVersion is too old: list again."""


@dataclass(frozen=True)
class Kind:
    api_version: str  # "v1", "apps/v1"
    kind: str
    plural: str

    @property
    def path(self) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/{self.plural}"


def _selectors(selector: str, field_selector: str) -> dict[str, str]:
    params = {"labelSelector": selector} if selector else {}
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


async def list_all(
    http: httpx.AsyncClient, kind: Kind, selector: str, field_selector: str = ""
) -> tuple[list[Obj], str]:
    """Every object of ``kind`` matching the label ``selector`` and ``field_selector``
    (paged) and the list's version."""
    items: list[Obj] = []
    params = {**_selectors(selector, field_selector), "limit": str(PAGE)}
    while True:
        resp = await http.get(kind.path, params=params)
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
) -> str:
    """One watch request from ``version``; returns the last version seen."""
    params = {
        "watch": "true",
        **_selectors(selector, field_selector),
        "resourceVersion": version,
        "allowWatchBookmarks": "true",
        "timeoutSeconds": str(WATCH_SECONDS),
    }
    timeout = httpx.Timeout(10.0, read=WATCH_SECONDS + 30.0)
    async with http.stream("GET", kind.path, params=params, timeout=timeout) as resp:
        if resp.status_code == 410:
            raise Gone()
        resp.raise_for_status()
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


async def run(
    http: httpx.AsyncClient,
    kind: Kind,
    selector: str,
    *,
    on_event: OnEvent,
    on_relist: OnRelist,
    ready: asyncio.Event | None = None,
    field_selector: str = "",
) -> None:
    """List and watch ``kind`` until cancelled; never raises otherwise."""
    version: str | None = None
    failures = 0
    while True:
        try:
            if version is None:
                items, version = await list_all(http, kind, selector, field_selector)
                on_relist(items)
                if ready is not None:
                    ready.set()
            version = await watch_once(http, kind, selector, version, on_event, field_selector)
            failures = 0
        except asyncio.CancelledError:
            raise
        except Gone:
            log.info("watch of %s expired; listing again", kind.plural)
            version = None
        except Exception as err:  # a broken connection, a restarting API server, ...
            failures += 1
            delay = min(0.5 * 2 ** min(failures, 5), 15.0)
            log.warning("watch of %s failed (%s); retrying in %.1f s", kind.plural, err, delay)
            await asyncio.sleep(delay)
