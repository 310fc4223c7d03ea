"""Insert throughput into a tenant's events table on chDB, and over the loopback HTTP path.

Why: the ingestion target is 100,000 events/s per core end to end, so the
ClickHouse leg must leave most of that budget to HTTP parsing, validation and
Redis. This measures three things on the real engine, into the table
`tenantry.clickhouse.schema` creates:

1. `engine`: INSERT ... SELECT generating rows inside the engine (its ceiling);
2. `chdb dicts` / `chdb ndjson`: `ChdbClient.insert` with dicts (encoded to
   JSONEachRow in Python) and `insert_json` with NDJSON bytes (what the
   ingestion writer has in hand), one dedup token per batch;
3. `http dicts` / `http ndjson`: the same through `HttpClickHouseClient` and the
   loopback server (clickhouse-connect raw_insert over HTTP, same engine).

Run: `.venv/bin/python -m bench.clickhouse_insert [--rows N] [--batch B]`.
It prints rows/s with the machine it ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import chdb

from bench.common import cpu_model
from tenantry.clickhouse import layout, schema
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseClient, json_each_row
from tenantry.clickhouse.http_client import HttpClickHouseClient
from tenantry_dev.loopback_server import LoopbackServer


def _events(count: int, offset: int) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": now - dt.timedelta(seconds=i),
            "event": ("signup", "view", "purchase", "click")[i % 4],
            "user_id": f"user-{(offset + i) % 5000}",
            "properties": json.dumps({"plan": "pro", "i": offset + i}),
        }
        for i in range(count)
    ]


def _count(client: ClickHouseClient, table: str) -> int:
    return int(client.query(f"SELECT count() AS n FROM {table}")[0]["n"])  # noqa: S608


def _timed(label: str, rows: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    took = time.perf_counter() - started
    rate = rows / took
    print(f"{label:<14} {rows:>9,} rows in {took:6.2f} s = {rate:>12,.0f} rows/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description="ClickHouse insert throughput (chDB)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"chdb {chdb.__version__}"
    )
    with tempfile.TemporaryDirectory() as data:
        client = ChdbClient(data)
        tenants = {
            name: schema.TenantSchema(database=name, retention_days=30)
            for name in ("engine_only", "chdb_dicts", "chdb_ndjson", "http_dicts", "http_ndjson")
        }
        for tenant in tenants.values():
            layout.provision(client, tenant)
        batches = [_events(args.batch, i * args.batch) for i in range(args.rows // args.batch)]
        total = len(batches) * args.batch
        encoded = [json_each_row(batch).encode() for batch in batches]

        def engine() -> None:
            client.command(
                "INSERT INTO engine_only.events (event_id, timestamp, event, user_id, properties) "
                "SELECT generateUUIDv4(), now64(3) - number, ['signup','view'][number % 2 + 1], "
                "concat('user-', toString(number % 5000)), '{\"plan\":\"pro\"}' "
                "FROM numbers({n:UInt64})",
                {"n": total},
            )

        def dicts(target: ClickHouseClient, table: str) -> Callable[[], None]:
            def run() -> None:
                for i, batch in enumerate(batches):
                    target.insert(table, batch, dedup_token=f"bench-{i}")

            return run

        def ndjson(target: ClickHouseClient, table: str) -> Callable[[], None]:
            def run() -> None:
                for i, data in enumerate(encoded):
                    target.insert_json(table, data, dedup_token=f"bench-{i}")

            return run

        _timed("engine", total, engine)
        _timed("chdb dicts", total, dicts(client, "chdb_dicts.events"))
        _timed("chdb ndjson", total, ndjson(client, "chdb_ndjson.events"))
        server = LoopbackServer(data).start()
        http = HttpClickHouseClient(host=server.host, port=server.port)
        try:
            _timed("http dicts", total, dicts(http, "http_dicts.events"))
            _timed("http ndjson", total, ndjson(http, "http_ndjson.events"))
        finally:
            http.close()
            server.close()
        for name in tenants:
            assert _count(client, f"{name}.events") == total, name
        client.close()


if __name__ == "__main__":
    main()
