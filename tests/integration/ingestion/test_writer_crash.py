"""Dedup after a writer crash: SIGKILL between insert and ack -> restart -> 0 lost, 0 duplicated.

The writer runs as `python -m ingestion --writer-only` in a subprocess (as in a
pod) and reaches the session's chDB engine through the loopback ClickHouse-HTTP
endpoint. TENANTRY_INGEST_TEST_PAUSE_AFTER_INSERT makes it stop right after its
insert succeeded and before the ack, writing the inserted entry ids to a
marker file; the test then SIGKILLs it. The restarted writer is either the same
consumer (a container restart: it replays its own journal) or another pod (it
reclaims the dead consumer's idle entries and replays that journal).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ingestion.stream import Stream
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry_dev.loopback_server import LoopbackServer
from tests.integration.ingestion.conftest import (
    RedisProcess,
    Service,
    ndjson_events,
    rows,
    writer_process,
)
from tests.support.wait import scaled, stop_process, until


async def wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path) -> str:
    """The ids in the marker the paused writer wrote."""

    def marked() -> str:
        assert proc.poll() is None, f"writer exited before its pause:\n{log.read_text()}"
        return path.read_text() if path.exists() else ""

    return await until(marked, what="the writer paused after its insert", timeout=120)


@pytest.mark.parametrize("restarted_as", ["same-consumer", "another-pod"])
async def test_writer_killed_between_insert_and_ack_loses_and_duplicates_nothing(
    restarted_as: str,
    service: Service,
    stream: Stream,
    redis: Redis,
    redis_process: RedisProcess,
    loopback: LoopbackServer,
    chdb_client: ChdbClient,
    database: str,
    tmp_path: Path,
) -> None:
    for _ in range(6):
        assert (await service.post(ndjson_events(50)))[0] == 202
    marker, log = tmp_path / "paused", tmp_path / "writer.log"
    first = writer_process(
        loopback=loopback,
        redis_process=redis_process,
        database=database,
        consumer="writer-a",
        log=log,
        pause_marker=marker,
    )
    try:
        inserted_ids = (await wait_for(marker, first, log)).split(",")
        # the insert reached ClickHouse, the ack did not reach Redis
        assert rows(chdb_client, database)[0] == 50 * len(inserted_ids)
        pending: Any = await redis.xpending_range(
            stream.names.stream, stream.names.group, min="-", max="+", count=100
        )
        pending_ids = {p["message_id"].decode() for p in pending}
        assert set(inserted_ids) <= pending_ids
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        stop_process(first, what="first writer")
    for _ in range(2):  # new batches arrive while no writer runs
        assert (await service.post(ndjson_events(50)))[0] == 202

    consumer = "writer-a" if restarted_as == "same-consumer" else "writer-b"
    second = writer_process(
        loopback=loopback,
        redis_process=redis_process,
        database=database,
        consumer=consumer,
        log=log,
    )
    try:

        async def backlog() -> int:
            assert second.poll() is None, log.read_text()
            return int(await redis.xlen(stream.names.stream))

        await until(backlog, accept=lambda n: n == 0, what="the stream drained", timeout=120)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=scaled(60)) == 0, log.read_text()
    finally:
        stop_process(second, what="second writer")
    assert rows(chdb_client, database) == (400, 400)  # 0 lost, 0 duplicated
    assert await redis.hlen(stream.names.journal) == 0
    groups = await redis.xinfo_groups(stream.names.stream)
    assert groups[0]["pending"] == 0
