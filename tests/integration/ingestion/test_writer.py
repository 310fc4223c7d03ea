"""The writer in-process: stream -> chDB, acked after insert, reclaiming from dead consumers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from ingestion.stream import Stream
from tenantry.clickhouse.chdb_client import ChdbClient
from tests.integration.ingestion.conftest import Service, make_writer, ndjson_events


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def count(chdb_client: ChdbClient, database: str) -> tuple[int, int]:
    (row,) = chdb_client.query(
        f"SELECT count() AS n, uniqExact(event_id) AS u FROM `{database}`.events"  # noqa: S608
    )
    return int(row["n"]), int(row["u"])


async def test_writer_inserts_acks_and_reports_usage(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    for _ in range(5):
        assert (await service.post(ndjson_events(100)))[0] == 202
    writer, metrics, usage = make_writer(stream, chdb_client, database=database)
    task = asyncio.create_task(writer.run())
    try:

        async def drained() -> bool:
            return await redis.xlen(stream.names.stream) == 0

        await eventually(drained)
    finally:
        writer.stop()
        await task
    assert count(chdb_client, database) == (500, 500)
    info = await redis.xinfo_groups(stream.names.stream)
    assert info[0]["pending"] == 0
    assert await redis.hlen(stream.names.journal) == 0
    assert sum(u.events for u in usage.flushes) == 500
    assert all(u.token.startswith("ingest:") for u in usage.flushes)
    assert metrics.registry.get_sample_value("tenantry_ingest_inserted_rows_total") == 500
    assert (metrics.registry.get_sample_value("tenantry_ingest_writer_lag_seconds") or 0) > 0
    (row,) = chdb_client.query(
        f"SELECT event, JSONExtractInt(properties, 'n') AS n FROM `{database}`.events "  # noqa: S608
        "ORDER BY n DESC LIMIT 1"
    )
    assert row == {"event": "view", "n": 99}


async def test_pending_entries_of_a_dead_consumer_are_reclaimed(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    await stream.ensure_group()
    for _ in range(3):
        assert (await service.post(ndjson_events(50)))[0] == 202
    # a consumer that read the entries and died before journaling or inserting them
    taken = await stream.read_new("dead-pod", count=10, block_ms=100)
    assert len(taken) == 3
    writer, metrics, _ = make_writer(
        stream, chdb_client, database=database, consumer="live-pod", claim_idle_seconds=0.5
    )
    task = asyncio.create_task(writer.run())
    try:

        async def drained() -> bool:
            return await redis.xlen(stream.names.stream) == 0

        await eventually(drained)
    finally:
        writer.stop()
        await task
    assert count(chdb_client, database) == (150, 150)
    assert metrics.registry.get_sample_value("tenantry_ingest_reclaimed_entries_total") == 3
    consumers = {
        c["name"]: c["pending"]
        for c in await redis.xinfo_consumers(stream.names.stream, stream.names.group)
    }
    assert consumers[b"dead-pod"] == 0


async def test_a_dead_consumers_inflight_insert_is_replayed_as_the_same_group(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    """Another consumer died after inserting and before acking: its journal is replayed
    with the same entries and token, so ClickHouse drops the repeat."""
    await stream.ensure_group()
    for _ in range(4):
        assert (await service.post(ndjson_events(30)))[0] == 202
    taken = await stream.read_new("dead-pod", count=10, block_ms=100)
    ids = [e.id for e in taken[:3]]
    assert await stream.begin_flush("dead-pod", ids) == ids
    data = b"".join(e.rows for e in taken[:3])
    from ingestion.stream import dedup_token

    chdb_client.insert_json(f"{database}.events", data, dedup_token=dedup_token(ids))
    assert count(chdb_client, database) == (90, 90)
    writer, _, usage = make_writer(
        stream, chdb_client, database=database, consumer="live-pod", claim_idle_seconds=0.3
    )
    task = asyncio.create_task(writer.run())
    try:

        async def drained() -> bool:
            return await redis.xlen(stream.names.stream) == 0

        await eventually(drained)
    finally:
        writer.stop()
        await task
    assert count(chdb_client, database) == (120, 120)
    assert await redis.hlen(stream.names.journal) == 0
    assert dedup_token(ids) in [u.token for u in usage.flushes]
