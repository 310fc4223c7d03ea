"""The writer in-process: stream -> chDB, acked after insert, reclaiming from dead consumers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

from redis.asyncio import Redis

from ingestion.stream import Stream
from ingestion.writer import Writer
from tenantry.clickhouse.chdb_client import ChdbClient
from tests.integration.ingestion.conftest import Service, make_writer, ndjson_events
from tests.support.wait import scaled, stop_task, until


async def run_until_drained(writer: Writer, redis: Redis, stream: Stream) -> None:
    """Run the writer until the stream is empty, then stop it."""
    task = asyncio.create_task(writer.run())
    try:

        async def drained() -> bool:
            return await redis.xlen(stream.names.stream) == 0

        await until(drained, what="the stream drained", timeout=120)
    finally:
        writer.stop()
        await asyncio.wait({task}, timeout=scaled(60))
        if not task.done():
            await stop_task(task, what="the writer")
            raise AssertionError("the writer did not stop when told")
        task.result()


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
    await run_until_drained(writer, redis, stream)
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
    await run_until_drained(writer, redis, stream)
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
    chunks = [e.rows for e in taken[:3]]
    from ingestion.stream import dedup_token

    chdb_client.insert_rowbinary(f"{database}.events", chunks, dedup_token=dedup_token(ids))
    assert count(chdb_client, database) == (90, 90)
    writer, _, usage = make_writer(
        stream, chdb_client, database=database, consumer="live-pod", claim_idle_seconds=0.3
    )
    await run_until_drained(writer, redis, stream)
    assert count(chdb_client, database) == (120, 120)
    assert await redis.hlen(stream.names.journal) == 0
    assert dedup_token(ids) in [u.token for u in usage.flushes]


async def test_stored_values_are_what_the_producer_sent(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    """The RowBinary rows land in the engine as the values the events carried."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=123456)
    local = now.astimezone(dt.timezone(dt.timedelta(hours=-5, minutes=-30)))
    given = "0b7e4f8e-7c1e-4d3f-9a51-2f1f0c6a1b2c"
    sent = [
        {"event": "buy", "user_id": "ü-1", "timestamp": local.isoformat(), "event_id": given,
         "properties": {"sku": "A\"\\\n", "n": 2}},
        {"event": "view", "user_id": "u-2"},
    ]  # fmt: skip
    body = "\n".join(json.dumps(e) for e in sent).encode()
    status, _, reply = await service.post(body)
    assert status == 202
    assert isinstance(reply, dict)
    writer, _, usage = make_writer(stream, chdb_client, database=database)
    await run_until_drained(writer, redis, stream)
    rows = chdb_client.query(
        f"SELECT * FROM `{database}`.events ORDER BY event"  # noqa: S608
    )
    buy, view = rows
    assert buy["event_id"] == uuid.UUID(given)
    assert buy["timestamp"] == now.replace(microsecond=123000)
    assert (buy["event"], buy["user_id"]) == ("buy", "ü-1")
    assert json.loads(buy["properties"]) == {"sku": 'A"\\\n', "n": 2}
    assert buy["batch_id"] == view["batch_id"] == reply["batch_id"]
    assert view["timestamp"] == view["received_at"] == buy["received_at"]
    assert abs(view["received_at"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert view["properties"] == "{}"
    assert [u.bytes for u in usage.flushes] == [len(body)]


async def test_entries_from_before_rowbinary_are_still_written(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    """A stream still holding JSONEachRow entries (`rows`, written before RowBinary) among
    new ones, as during an upgrade: both are inserted, each once."""
    await stream.ensure_group()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.000")
    old = b"".join(
        json.dumps(
            {"event_id": str(uuid.uuid4()), "timestamp": stamp, "event": "old", "user_id": "u",
             "properties": "{}", "received_at": stamp, "batch_id": "b0"}
        ).encode() + b"\n"
        for _ in range(7)
    )  # fmt: skip
    await redis.xadd(stream.names.stream, {"rows": old, "n": 7, "batch": "b0"})
    assert (await service.post(ndjson_events(20)))[0] == 202
    await redis.xadd(stream.names.stream, {"rows": old.replace(b'"b0"', b'"b1"'), "n": 7})
    writer, _, usage = make_writer(stream, chdb_client, database=database)
    await run_until_drained(writer, redis, stream)
    # The two old entries hold the same 7 events (ids, time, user, name): one row each,
    # as readers see them (FINAL) whether or not the engine has merged the copies yet.
    (seen,) = chdb_client.query(f"SELECT count() AS n FROM `{database}`.events FINAL")  # noqa: S608
    assert int(seen["n"]) == 27
    assert count(chdb_client, database)[1] == 27
    assert sum(u.events for u in usage.flushes) == 34
    assert sum(u.bytes for u in usage.flushes) == 2 * len(old) + len(ndjson_events(20))
