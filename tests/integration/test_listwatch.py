"""The shared list-then-watch loop (tenantry/listwatch.py) against the real API server:
list, then watch from the list's version; a version that is too old (410) lists again;
a broken connection resumes from the last version seen, without listing again."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from lightkube import AsyncClient, KubeConfig
from tenantry_operator.kube import Kube as OperatorKube

from tenantry import listwatch
from tests.support.kube import Kube
from tests.support.wait import stop_task, until

CONFIGMAPS = listwatch.Kind("v1", "ConfigMap", "configmaps")


@pytest.fixture
async def client(kube: Kube) -> AsyncIterator[OperatorKube]:
    op = OperatorKube(AsyncClient(config=KubeConfig.from_file(str(kube.kubeconfig))))
    try:
        yield op
    finally:
        await op.close()


def _cm(name: str, label: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"watch-test": label}},
        "data": {"v": value},
    }


async def test_lists_then_streams_changes_of_matching_objects(
    kube: Kube, client: OperatorKube
) -> None:
    label = uuid.uuid4().hex[:12]
    selector = f"watch-test={label}"
    await client.apply(_cm(f"before-{label}", label, "1"))
    await client.apply(_cm(f"other-{label}", "someone-else", "1"))
    listed: list[tuple[list[str], str]] = []
    events: list[tuple[str, str, str]] = []
    synced: list[bool] = []
    ready = asyncio.Event()
    task = asyncio.create_task(
        listwatch.run(
            client.http,
            CONFIGMAPS,
            selector,
            on_event=lambda t, o: events.append((t, o["metadata"]["name"], o["data"]["v"])),
            on_relist=lambda objs, v: listed.append(([o["metadata"]["name"] for o in objs], v)),
            on_synced=synced.append,
            ready=ready,
        )
    )
    try:
        await until(ready.is_set, what="the first listing")
        [(names, version)] = listed
        assert names == [f"before-{label}"]  # the snapshot, matching objects only
        assert int(version) > 0
        assert synced == [True]
        name = f"live-{label}"
        await client.apply(_cm(name, label, "1"))
        await client.apply(_cm(name, label, "2"))
        await client.delete("v1", "ConfigMap", name, namespace="default")
        await client.apply(_cm(f"other2-{label}", "someone-else", "1"))
        await until(lambda: len(events) >= 3, what="three events")
        assert events == [("ADDED", name, "1"), ("MODIFIED", name, "2"), ("DELETED", name, "2")]
        assert not task.done()
    finally:
        await stop_task(task, what="the watch")


async def test_listed_objects_carry_their_kind_and_a_version_to_watch_from(
    kube: Kube, client: OperatorKube
) -> None:
    label = uuid.uuid4().hex[:12]
    await client.apply(_cm(f"x-{label}", label, "1"))
    items, version = await listwatch.list_all(client.http, CONFIGMAPS, f"watch-test={label}")
    assert version
    assert [(o["apiVersion"], o["kind"]) for o in items] == [("v1", "ConfigMap")]
    seen: list[str] = []
    await client.apply(_cm(f"x-{label}", label, "2"))
    task = asyncio.create_task(
        listwatch.watch_once(
            client.http,
            CONFIGMAPS,
            f"watch-test={label}",
            version,
            lambda _t, o: seen.append(o["data"]["v"]),
        )
    )
    try:
        await until(lambda: seen, accept=lambda s: s == ["2"], what="the change after the list")
    finally:
        await stop_task(task, what="the watch")


class _Breaking(httpx2.AsyncBaseTransport):
    """The real connection to the real API server, except that the next ``fail`` watch
    requests are refused as if the network were down (how a broken connection looks to
    the loop), and the next ``gone`` ones are answered 410 as the API server answers a
    version it no longer keeps. The API server cannot be made to do that on demand: its
    watch cache served versions from before its start and from before an etcd
    compaction alike (tried with kube-apiserver 1.34)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.fail = 0
        self.gone = 0
        self.requests: list[tuple[str, str]] = []  # (list | watch, resourceVersion)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        watch = request.url.params.get("watch") == "true"
        self.requests.append(
            ("watch" if watch else "list", request.url.params.get("resourceVersion", ""))
        )
        if watch and self.fail > 0:
            self.fail -= 1
            raise httpx2.ConnectError("the network is down", request=request)
        if watch and self.gone > 0:
            self.gone -= 1
            status = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410}
            return httpx2.Response(410, json={**status, "message": "too old resource version"})
        return await self.inner.handle_async_request(request)


@dataclass
class Watched:
    """What the loop handed over, and the faulty connection it went through."""

    breaking: _Breaking
    events: list[tuple[str, str]] = field(default_factory=list)  # (name, data v)
    relists: list[tuple[list[str], str]] = field(default_factory=list)  # (names, version)
    synced: list[bool] = field(default_factory=list)


@contextlib.asynccontextmanager
async def watching(client: OperatorKube, label: str) -> AsyncIterator[Watched]:
    """The loop over ConfigMaps labelled ``label``, through a ``_Breaking`` connection,
    each watch ended by the server after 2 s (a resume each time); yields once listed."""
    http = client.http
    seen = Watched(_Breaking(http._transport))
    http._transport = seen.breaking
    ready = asyncio.Event()
    task = asyncio.create_task(
        listwatch.run(
            http,
            CONFIGMAPS,
            f"watch-test={label}",
            on_event=lambda _t, o: seen.events.append((o["metadata"]["name"], o["data"]["v"])),
            on_relist=lambda objs, v: seen.relists.append(
                ([o["metadata"]["name"] for o in objs], v)
            ),
            on_synced=seen.synced.append,
            ready=ready,
            watch_seconds=2,
        )
    )
    try:
        await until(ready.is_set, what="the first listing")
        yield seen
    finally:
        await stop_task(task, what="the watch")
        http._transport = seen.breaking.inner


async def test_a_broken_connection_resumes_from_the_last_version_without_listing(
    kube: Kube, client: OperatorKube
) -> None:
    label = uuid.uuid4().hex[:12]
    async with watching(client, label) as seen:
        name = f"a-{label}"
        await client.apply(_cm(name, label, "1"))
        await until(lambda: seen.events == [(name, "1")], what="the first event")
        seen.breaking.fail = 2  # the next two watch requests fail; the third goes through
        await until(lambda: seen.breaking.fail == 0, what="two failed watches", timeout=30)
        await until(lambda: seen.synced[-1], what="the watch current again", timeout=30)
        await client.apply(_cm(name, label, "2"))
        await until(lambda: len(seen.events) == 2, what="the change after the resume")
        assert seen.events == [(name, "1"), (name, "2")]
        [(_, listed_at)] = seen.relists  # resumed from its version, not listed again
        assert seen.synced[:3] == [True, False, True]
        watched = [v for what, v in seen.breaking.requests if what == "watch"]
        assert all(int(v) >= int(listed_at) for v in watched)
        assert int(watched[-1]) > int(listed_at)  # the version moved on with the events


async def test_a_version_that_is_gone_lists_again_at_once(kube: Kube, client: OperatorKube) -> None:
    label = uuid.uuid4().hex[:12]
    async with watching(client, label) as seen:
        seen.breaking.gone = 1  # the next watch request (within 2 s) is answered 410
        await client.apply(_cm(f"b-{label}", label, "1"))  # may land in the gap
        await until(lambda: len(seen.relists) == 2, what="the second listing", timeout=30)
        assert [names for names, _ in seen.relists] == [[], [f"b-{label}"]]  # missed: listed
        assert seen.synced == [True, False, True]
        await client.apply(_cm(f"c-{label}", label, "1"))
        await until(
            lambda: (f"c-{label}", "1") in seen.events, what="watching again after the list"
        )
        kinds = [what for what, _ in seen.breaking.requests]
        gone_at = kinds.index("list", 1)
        assert kinds[gone_at - 1] == "watch"  # listed right after the refused watch
