"""watch.py against the real API server: list, then watch from the list's version."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lightkube import KubeConfig
from tenantry_operator import watch
from tenantry_operator.kube import Kube as OperatorKube

from tests.support.kube import Kube
from tests.support.wait import stop_task, until

CONFIGMAPS = watch.Kind("v1", "ConfigMap", "configmaps")


@pytest.fixture
async def client(kube: Kube) -> AsyncIterator[OperatorKube]:
    from lightkube import AsyncClient

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
    listed: list[list[str]] = []
    events: list[tuple[str, str, str]] = []
    ready = asyncio.Event()
    task = asyncio.create_task(
        watch.run(
            client.http,
            CONFIGMAPS,
            selector,
            on_event=lambda t, o: events.append((t, o["metadata"]["name"], o["data"]["v"])),
            on_relist=lambda objs: listed.append([o["metadata"]["name"] for o in objs]),
            ready=ready,
        )
    )
    try:
        await until(ready.is_set, what="the first listing")
        assert listed == [[f"before-{label}"]]  # the snapshot, matching objects only
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
    items, version = await watch.list_all(client.http, CONFIGMAPS, f"watch-test={label}")
    assert version
    assert [(o["apiVersion"], o["kind"]) for o in items] == [("v1", "ConfigMap")]
    seen: list[str] = []
    await client.apply(_cm(f"x-{label}", label, "2"))
    task = asyncio.create_task(
        watch.watch_once(
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
