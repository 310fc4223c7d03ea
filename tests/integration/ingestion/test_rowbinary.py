"""`prepare`'s RowBinary into the events table through both ClickHouse adapters.

Binary rows may hold any byte sequence, a blank line (two newlines) included,
which chDB would take for the end of a statement if the rows went inline in the
query text: both adapters (chDB's streaming insert, and clickhouse-connect over
HTTP to the loopback server) must insert every row, once per dedup token.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from ingestion import events
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseClient
from tenantry.clickhouse.http_client import HttpClickHouseClient
from tenantry_dev.loopback_server import LoopbackServer
from tests.conftest import LOOPBACK_WRITER_PASSWORD


@pytest.fixture(params=["chdb", "http"])
def client(
    request: pytest.FixtureRequest, chdb_client: ChdbClient, loopback: LoopbackServer
) -> Iterator[ClickHouseClient]:
    if request.param == "chdb":
        yield chdb_client
        return
    http = HttpClickHouseClient(
        host=loopback.host, port=loopback.port, username="writer", password=LOOPBACK_WRITER_PASSWORD
    )
    yield http
    http.close()


def test_rowbinary_with_blank_lines_inside_is_inserted_whole_and_once(
    client: ClickHouseClient, chdb_client: ChdbClient, database: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    body = b"".join(
        json.dumps({"event": "e", "user_id": f"a\n\n{i}", "properties": {"t": "\n\n"}}).encode()
        + b"\n"
        for i in range(500)
    )
    limits = events.Limits(retention_days=30)
    chunks = [
        events.prepare(body, ndjson=True, now=now, limits=limits, batch_id=f"b{n}")[0]
        for n in range(3)
    ]
    assert b"\n\n" in chunks[0]
    table = f"{database}.events"
    client.insert_rowbinary(table, chunks, dedup_token="t1")
    client.insert_rowbinary(table, chunks, dedup_token="t1")  # a retry: dropped
    client.insert_rowbinary(table, [], dedup_token="t2")  # nothing to insert
    (row,) = chdb_client.query(
        f"SELECT count() AS n, uniqExact(user_id) AS users, uniqExact(batch_id) AS batches, "  # noqa: S608
        f"min(JSONExtractString(properties, 't')) AS t FROM {table}"
    )
    assert row == {"n": 1500, "users": 500, "batches": 3, "t": "\n\n"}
