"""Events a producer sends twice, in different batches or in one insert, are stored
once (issue 18, item 12): the events table deduplicates on `event_id` (with the event's name, user
and time, its sorting key; `tenantry.clickhouse.schema.events_table`).

Through the real path: the HTTP side on a real port, the tenant's Redis stream, the
writer, chDB with the tenant's schema as the operator provisions it. Reads are made
as the product makes them: with a panel query's settings (`final = 1`), which the
`reader` user's settings profile applies too.
"""

from __future__ import annotations

import json
import uuid

from redis.asyncio import Redis

from controlplane.dashboards.repository import Limits
from ingestion.openapi import IDEMPOTENCY_HEADER
from ingestion.stream import Stream
from tenantry.clickhouse.chdb_client import ChdbClient
from tests.integration.ingestion.conftest import Service, make_writer
from tests.integration.ingestion.test_writer import run_until_drained

PANEL = Limits(max_execution_seconds=30, max_result_rows=10, readonly=0)


def batch(ids: list[str], *, start: int = 0) -> bytes:
    """Events with the producer's own ids and times (what a retry sends again)."""
    lines = [
        json.dumps(
            {
                "event": "purchase",
                "user_id": f"u{n % 7}",
                "event_id": event_id,
                "timestamp": f"2026-12-01T10:{n // 60 % 60:02d}:{n % 60:02d}.123Z",
                "properties": {"n": n},
            }
        )
        for n, event_id in enumerate(ids, start)
    ]
    return ("\n".join(lines) + "\n").encode()


def counts(chdb_client: ChdbClient, database: str) -> tuple[int, int]:
    """(rows stored, rows a panel query sees)."""
    table = f"`{database}`.events"
    (stored,) = chdb_client.query(f"SELECT count() AS n FROM {table}")  # noqa: S608
    (seen,) = chdb_client.query(f"SELECT count() AS n FROM {table}" + PANEL.clause())  # noqa: S608
    return int(stored["n"]), int(seen["n"])


async def test_events_resent_in_other_batches_are_counted_once(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(40)]
    first, overlap = batch(ids[:30]), batch(ids[20:], start=20)  # 10 events in both
    sends = [
        (first, {}),
        (first, {}),  # a retry without a key: a second stream entry
        (first, {IDEMPOTENCY_HEADER: "retry-1"}),  # under a key of its own: a third
        (overlap, {IDEMPOTENCY_HEADER: "batch-2"}),
    ]
    chdb_client.command(f"SYSTEM STOP MERGES `{database}`.events")  # to see the copies
    for body, headers in sends:  # each its own insert, hence part
        assert (await service.post(body, **headers))[0] == 202
        assert await redis.xlen(stream.names.stream) == 1  # stored: a stream entry
        writer, _, _ = make_writer(stream, chdb_client, database=database)
        await run_until_drained(writer, redis, stream)

    assert counts(chdb_client, database) == (30 * 3 + 20, 40)  # until merged, FINAL

    chdb_client.command(f"SYSTEM START MERGES `{database}`.events")
    chdb_client.command(f"OPTIMIZE TABLE `{database}`.events FINAL")
    assert counts(chdb_client, database) == (40, 40)  # merged: one row per event
    (row,) = chdb_client.query(
        f"SELECT sum(JSONExtractInt(properties, 'n')) AS s FROM `{database}`.events"  # noqa: S608
    )
    assert int(row["s"]) == sum(range(40))


async def test_events_sharing_an_id_but_not_their_time_are_two_events(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    """The deduplication key is the event: name, user, time and id. A producer that
    reuses an id for another event loses nothing."""
    same = str(uuid.uuid4())
    assert (await service.post(batch([same])))[0] == 202
    assert (await service.post(batch([same], start=1)))[0] == 202  # another second, user
    writer, _, _ = make_writer(stream, chdb_client, database=database)
    await run_until_drained(writer, redis, stream)
    chdb_client.command(f"OPTIMIZE TABLE `{database}`.events FINAL")
    assert counts(chdb_client, database) == (2, 2)


async def test_copies_within_one_insert_are_counted_once(
    service: Service, stream: Stream, redis: Redis, chdb_client: ChdbClient, database: str
) -> None:
    """A batch sent twice before the writer flushes: both copies go into one insert.
    The writer's inserts leave them to the merges (`schema.EVENTS_INSERT_SETTINGS`,
    cheaper than collapsing them while writing the part), so they are handled as
    copies in different inserts are: seen once with FINAL at once, stored once after
    the merge."""
    ids = [str(uuid.uuid4()) for _ in range(30)]
    chdb_client.command(f"SYSTEM STOP MERGES `{database}`.events")  # to see the copies
    for _ in range(2):
        assert (await service.post(batch(ids)))[0] == 202
    assert await redis.xlen(stream.names.stream) == 2
    writer, _, usage = make_writer(stream, chdb_client, database=database)
    await run_until_drained(writer, redis, stream)
    assert len(usage.flushes) == 1  # one insert, hence one part
    (parts,) = chdb_client.query(
        "SELECT count() AS n FROM system.parts WHERE database = {db:String} "
        "AND table = 'events' AND active",
        {"db": database},
    )
    assert int(parts["n"]) == 1

    assert counts(chdb_client, database) == (60, 30)  # until merged, FINAL

    chdb_client.command(f"SYSTEM START MERGES `{database}`.events")
    chdb_client.command(f"OPTIMIZE TABLE `{database}`.events FINAL")
    assert counts(chdb_client, database) == (30, 30)
