"""What deduplicating events by `event_id` costs: the ReplacingMergeTree events table
(schema version 2) against version 1's plain MergeTree, in the same run on chDB.

Why: issue 18 (item 12) stores an event a producer resent once, with the engine
(`tenantry.clickhouse.schema.events_table`): `event_id` ends the sorting key, the
engine keeps one row per key at merge time, and reads apply FINAL (`final = 1`, in the
reader's profile and in panel queries) so copies not merged yet count once. That costs
on insert (one more sort column, merges that keep one row per key) and on every
read (FINAL merges the parts' rows by key at query time). Measured here:

1. insert: the same rows, generated inside the engine (`INSERT ... SELECT` from
   `numbers`, so only the engine's work is timed), in batches, into each table, with
   the ingestion writer's insert settings (`schema.EVENTS_INSERT_SETTINGS`); 5 %
   of the events are sent a second time, in a later batch, as a producer's retry;
2. panel queries (an hourly count of one event over a week; daily distinct users)
   on version 1 without FINAL, and on version 2 with `final = 1` and without it,
   first on the parts as the inserts and background merges left them, then after
   `OPTIMIZE ... FINAL` (one part per partition, what a quiet tenant converges to);
3. the rows each read returns (version 2 with FINAL: the events, once each).

Rounds alternate the two tables, so the machine's noise hits both; the figures are
medians and ratios against version 1 (the baseline) from the same run.

Run: `.venv/bin/python -m bench.event_dedup [--rows N] [--batch B] [--rounds R]`.
"""

# ruff: noqa: S608 - every statement here is built from this file's constants and numbers

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time

from bench.common import cpu_model
from tenantry.clickhouse import schema
from tenantry.clickhouse.chdb_client import ChdbClient

TABLES = {"v1": "MergeTree", "v2": schema.STORING_ENGINE}
QUERIES = {
    "hourly count": (
        "SELECT toStartOfHour(timestamp) AS h, count() AS n FROM {t} "
        "WHERE event = 'purchase' AND timestamp >= {start} GROUP BY h ORDER BY h"
    ),
    "daily users": (
        "SELECT toDate(timestamp) AS d, uniqExact(user_id) AS u FROM {t} "
        "WHERE timestamp >= {start} GROUP BY d ORDER BY d"
    ),
    "total": "SELECT count() AS n FROM {t}",
}


def _create(sess: ChdbClient, name: str, engine: str) -> None:
    wanted = schema.TenantSchema(database="bench", retention_days=3650)
    v1 = engine == "MergeTree"
    order_by = schema.ORDER_BY_V1 if v1 else schema.ORDER_BY
    sess.command(schema.events_table(wanted, name=name, engine=engine, order_by=order_by))


# The ingestion writer's insert settings (copies within an insert left to the merges),
# and no block deduplication: the resent rows must reach the engine.
_INSERT_SETTINGS = ", ".join(
    f"{name} = {value}"
    for name, value in {"insert_deduplicate": 0, **schema.EVENTS_INSERT_SETTINGS}.items()
)


def _batch_sql(table: str, first: int, size: int, *, resend_from: int | None) -> str:
    """`size` events numbered from `first`: event n is always the same row (id, time,
    user, properties), so a resent n is a true copy. With `resend_from`, 5 % of the
    batch repeats earlier events from there."""
    rows = (
        f"SELECT number AS n FROM numbers({first}, {size})"
        if resend_from is None
        else f"SELECT number AS n FROM numbers({first}, {size - size // 20}) "
        f"UNION ALL SELECT number AS n FROM numbers({resend_from}, {size // 20})"
    )
    return (
        f"INSERT INTO bench.{table} (event_id, timestamp, event, user_id, properties) "
        "SELECT reinterpretAsUUID(reverse(unhex(lpad(hex(cityHash64(n)), 32, '0')))), "
        "toDateTime64('2026-12-01 00:00:00', 3, 'UTC') - toIntervalSecond(n % 2592000), "
        "['signup', 'view', 'purchase', 'click'][n % 4 + 1], "
        "concat('user-', toString(n % 50000)), concat('{\"n\":', toString(n), '}') "
        f"FROM ({rows}) SETTINGS {_INSERT_SETTINGS}"
    )


def _median_seconds(sess: ChdbClient, sql: str, repeats: int) -> tuple[float, str]:
    sess.query(sql)  # warm: the first read of a table pays for loading its marks
    times: list[float] = []
    result = ""
    for _ in range(repeats):
        start = time.perf_counter()
        result = repr(sess.query(sql))
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _one(sess: ChdbClient, sql: str) -> str:
    (row,) = sess.query(sql)
    (value,) = row.values()
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5, help="repeats of each query")
    args = parser.parse_args()
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, "
        f"{os.cpu_count()} CPUs, {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        sess = ChdbClient(folder)
        sess.command("CREATE DATABASE bench")
        for name, engine in TABLES.items():
            _create(sess, name, engine)
        insert = {name: 0.0 for name in TABLES}
        for first in range(0, args.rows, args.batch):
            resend = first - 10 * args.batch if first >= 10 * args.batch else None
            for name in TABLES if (first // args.batch) % 2 else reversed(TABLES):
                start = time.perf_counter()
                sess.command(_batch_sql(name, first, args.batch, resend_from=resend))
                insert[name] += time.perf_counter() - start
        print(f"\ninsert of {args.rows:,} rows in batches of {args.batch:,} (5 % resent):")
        for name in TABLES:
            rate = args.rows / insert[name]
            print(f"  {name}: {rate:,.0f} rows/s, x{insert['v1'] / insert[name]:.2f} of v1")
        since = "toDateTime64('2026-11-24 00:00:00', 3, 'UTC')"
        for stage in ("as inserted", "after OPTIMIZE FINAL"):
            if stage != "as inserted":
                for name in TABLES:
                    sess.command(f"OPTIMIZE TABLE bench.{name} FINAL")
            parts = {
                name: _one(
                    sess,
                    "SELECT count() AS n FROM system.parts WHERE database = 'bench' "
                    f"AND table = '{name}' AND active",
                )
                for name in TABLES
            }
            print(f"\nqueries, {stage} (active parts: v1 {parts['v1']}, v2 {parts['v2']}):")
            for label, template in QUERIES.items():
                base, base_rows = _median_seconds(
                    sess, template.format(t="bench.v1", start=since), args.rounds
                )
                plain, _ = _median_seconds(
                    sess, template.format(t="bench.v2", start=since), args.rounds
                )
                final, final_rows = _median_seconds(
                    sess,
                    template.format(t="bench.v2", start=since) + " SETTINGS final = 1",
                    args.rounds,
                )
                same = "same result" if final_rows == base_rows else "fewer rows (dedup)"
                print(
                    f"  {label}: v1 {base * 1000:.1f} ms; v2 {plain * 1000:.1f} ms "
                    f"(x{plain / base:.2f}); v2 final {final * 1000:.1f} ms "
                    f"(x{final / base:.2f}); v2 final vs v1: {same}"
                )
        totals = {name: _one(sess, f"SELECT count() AS n FROM bench.{name}") for name in TABLES}
        final_total = _one(sess, "SELECT count() AS n FROM bench.v2 FINAL")
        print(f"\nrows stored: v1 {totals['v1']}, v2 {totals['v2']} (v2 FINAL {final_total})")
        sess.close()


if __name__ == "__main__":
    main()
