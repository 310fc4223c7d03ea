"""What an ingestion 202 promises, at each durability level, through a real node crash.

A node crash is not a process kill: the kernel's page cache dies too, so a write that
Redis put in its append-only file but did not fsync is gone. The tests produce that
fault for real: Redis's data folder is a FUSE mount (`tests.support.lossyfs`) that
keeps every write not fsynced in its own memory; the crash is SIGKILL of redis-server
and then of the file system, and the folder beneath it is the disk after the reboot.

Redis runs with exactly the arguments the operator renders for a tenant's level
(`spec.redis.durability`), and producers talk to the real ingestion HTTP service
(no writer: the stream keeps every batch, so what survived can be counted). The
crash comes while four producers are sending; every batch answered 202 is then
looked for in the stream of the Redis restarted on the disk.

- EverySecond (the default): acknowledged batches *are* lost by this fault, which
  shows it has teeth (up to three crashes, since a crash that falls right after
  Redis's once-a-second fsync could lose nothing);
- Always: not one acknowledged batch is lost;
- and a kill of the redis-server process alone (the disk's cache, a node's page cache,
  lives on) loses none even at EverySecond: what the default promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from tenantry_operator.builders import redis as redis_builder
from tenantry_operator.normalize import tenant_model

from ingestion.stream import Names, Stream, connect
from tenantry.api.tenant import Durability
from tenantry_dev.services import free_port
from tests.integration.ingestion.conftest import (
    TENANT,
    Service,
    make_service,
    ndjson_events,
)
from tests.support import lossyfs
from tests.support.wait import eventually, stop_process, until

PASSWORD = "durability-test-password"  # a throwaway local Redis
SENDERS = 4
MIN_ACKED = 60  # batches answered 202 before the crash, at least
INGEST_SECONDS = 2.0  # before the crash, at least: twice Redis's fsync period at EverySecond


def rendered_redis(level: Durability, *, folder: Path, port: int) -> list[str]:
    """redis-server's command line as the operator renders it for a tenant at ``level``,
    on ``folder`` (the pod's /data) and a loopback ``port``."""
    body = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": TENANT, "uid": "u-1", "generation": 1},
        "spec": {"redis": {"durability": level.value}},
    }
    (sts,) = redis_builder.statefulsets(tenant_model(body))
    # The Redis container itself (a metrics exporter runs beside it in the pod).
    (container,) = [
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "redis"
    ]
    binary = shutil.which(container["command"][0])
    assert binary is not None, "redis-server is missing: bash scripts/bootstrap.sh"
    args = [
        str(folder) if a == "/data" else PASSWORD if a == "$(REDIS_PASSWORD)" else a
        for a in container["args"]
    ]
    assert str(folder) in args
    assert PASSWORD in args
    return [binary, *args, "--bind", "127.0.0.1", "--port", str(port)]


def start_redis(command: list[str], *, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {log.read_text()[-2000:]}")
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    try:
        eventually(listening, what="redis-server listening", interval=0.02, ignore=(OSError,))
    except BaseException:
        stop_process(proc, what="redis-server")
        raise
    return proc


@dataclass
class Crash:
    """One crash: the batches answered 202 before it, and those the disk kept."""

    acked: set[str]
    kept: set[str]

    @property
    def lost(self) -> set[str]:
        return self.acked - self.kept


async def batch_ids(client: Redis, names: Names) -> set[str]:
    entries: Any = await client.xrange(names.stream)
    return {fields[b"batch"].decode() for _id, fields in entries}


async def crash_while_ingesting(level: Durability, folder: Path, *, node: bool = True) -> Crash:
    """Ingest from SENDERS producers into Redis on the lossy disk for INGEST_SECONDS (and
    MIN_ACKED batches), then crash: the node (``node``: redis-server and the disk's
    volatile cache die) or only the redis-server process (the cache, the kernel's page
    cache of a real node, lives on). Then restart Redis on what is left."""
    disk, mountpoint = folder / "disk", folder / "mnt"
    disk.mkdir(parents=True)
    mountpoint.mkdir()
    names = Names.for_prefix(f"tenantry:ingest:{TENANT}")
    port = free_port()
    acked: set[str] = set()
    stop = asyncio.Event()

    async def producer(service: Service) -> None:
        while not stop.is_set():
            status, _headers, body = await service.post(ndjson_events(5))
            if status == 202:
                assert isinstance(body, dict)
                acked.add(body["batch_id"])

    fs = lossyfs.mount(disk, mountpoint, log=folder / "lossyfs.log")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        command = rendered_redis(level, folder=mountpoint, port=port)
        redis_proc = start_redis(command, port=port, log=folder / "redis.log")
        processes.append(redis_proc)
        client = connect(host="127.0.0.1", port=port, password=PASSWORD)
        try:
            setting = await client.config_get("appendfsync")
            assert setting == {"appendfsync": level.appendfsync}
            async with contextlib.aclosing(
                make_service(Stream(client, names), max_backlog=1_000_000)
            ) as services:
                async for service in services:
                    producers = [asyncio.create_task(producer(service)) for _ in range(SENDERS)]
                    try:
                        await asyncio.sleep(INGEST_SECONDS)
                        await until(
                            lambda: len(acked),
                            what=f"{MIN_ACKED} batches acknowledged",
                            accept=lambda n: n >= MIN_ACKED,
                            interval=0.01,
                        )
                        redis_proc.send_signal(signal.SIGKILL)
                        if node:  # the disk's volatile cache dies with it
                            lossyfs.unmount(fs, mountpoint, crash=True)
                    finally:
                        stop.set()
                        # after the crash they get 503s, or errors for a dead connection
                        await asyncio.gather(*producers, return_exceptions=True)
        finally:
            await client.aclose()
        stop_process(redis_proc, what="redis-server")

        # The restart: Redis with the same arguments, on what the disk kept after a
        # node crash (the reboot), or on the same mount after a process kill.
        command = rendered_redis(level, folder=disk if node else mountpoint, port=port)
        processes.append(start_redis(command, port=port, log=folder / "redis-after.log"))
        client = connect(host="127.0.0.1", port=port, password=PASSWORD)
        try:
            kept = await batch_ids(client, names)
        finally:
            await client.aclose()
    finally:
        for proc in processes:
            stop_process(proc, what="redis-server")
        lossyfs.unmount(fs, mountpoint, crash=True)
    return Crash(acked=acked, kept=kept)


async def test_at_every_second_a_node_crash_loses_acknowledged_batches(tmp_path: Path) -> None:
    crashes: list[Crash] = []
    for attempt in range(3):
        crash = await crash_while_ingesting(Durability.EVERY_SECOND, tmp_path / f"try-{attempt}")
        crashes.append(crash)
        assert len(crash.acked) >= MIN_ACKED
        assert crash.kept, "the disk kept nothing at all: the AOF was never fsynced"
        if crash.lost:
            break
    seen = [(len(c.acked), len(c.lost)) for c in crashes]
    assert crashes[-1].lost, f"no acknowledged batch lost in 3 crashes (acked, lost): {seen}"


async def test_at_always_a_node_crash_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    for attempt in range(2):  # two crashes, each at another moment of the AOF
        crash = await crash_while_ingesting(Durability.ALWAYS, tmp_path / f"try-{attempt}")
        assert len(crash.acked) >= MIN_ACKED
        assert not crash.lost, (
            f"{len(crash.lost)} of {len(crash.acked)} acknowledged batches lost: "
            f"{sorted(crash.lost)[:5]}"
        )


async def test_at_every_second_a_process_kill_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    crash = await crash_while_ingesting(Durability.EVERY_SECOND, tmp_path, node=False)
    assert len(crash.acked) >= MIN_ACKED
    assert not crash.lost, f"{len(crash.lost)} of {len(crash.acked)} acknowledged batches lost"
