"""What the ingestion writer's inserts cost the engine, per row, under each events-table
variant: CPU of all threads (the insert and the background merges it causes), on chDB.

Why: ingestion's events per CPU-second fell between e2c183b and main by more than the
parts measured apart explained (bench/README.md, "Ingestion: the unattributed 7 %").
The writer runs the engine in its process, so the engine's work on every insert (and
the merges of the parts it writes) is part of that CPU. This isolates it from the HTTP
side and Redis, and from the load of a shared machine: CPU time, not wall time.

Each variant runs in a process of its own (the engine's background merges belong to
the process, so they are counted with the inserts that caused them), in rounds that
alternate the variants:

- `v1`: schema version 1, a MergeTree sorted by `ORDER_BY_V1` (no `event_id`);
- `v1+event_id`: a MergeTree sorted by `ORDER_BY` (with `event_id`);
- `v2 collapsing`: the ReplacingMergeTree of version 2, inserts without settings (the
  engine collapses copies within an insert while writing its part);
- `v2`: the same table with the writer's `schema.EVENTS_INSERT_SETTINGS`.

A process prepares `--inserts` groups of `--rows` rows first (`ingestion.events.prepare`
on the same NDJSON batches as `bench/ingest_throughput.py`, a new `event_id` for every
event), then inserts them as the writer does (`insert_rowbinary`, one chunk per batch of
1000, a dedup token each, `--pause` seconds apart, the writer's pace), then waits until
the engine has no merge running. CPU is counted from the first insert to then.

Run: `.venv/bin/python -m bench.events_insert_cpu [--inserts 15] [--rows 200000]
[--rounds 3]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid

from bench.common import cpu_model
from bench.ingest_throughput import _bodies
from ingestion import events
from tenantry.clickhouse import schema
from tenantry.clickhouse.chdb_client import ChdbClient

VARIANTS: dict[str, tuple[str, str, dict[str, int]]] = {
    "v1": ("MergeTree", schema.ORDER_BY_V1, {}),
    "v1+event_id": ("MergeTree", schema.ORDER_BY, {}),
    "v2 collapsing": (schema.STORING_ENGINE, schema.ORDER_BY, {}),
    "v2": (schema.STORING_ENGINE, schema.ORDER_BY, schema.EVENTS_INSERT_SETTINGS),
}
BATCH = 1000


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _merging(client: ChdbClient) -> int:
    (row,) = client.query("SELECT count() AS n FROM system.merges")
    return int(row["n"])


def child(variant: str, *, inserts: int, rows: int, pause: float) -> dict[str, float]:
    """One variant in this process: the CPU per row of its inserts and their merges."""
    engine, order_by, settings = VARIANTS[variant]
    bodies = _bodies(32, BATCH)
    now = dt.datetime.now(dt.UTC)
    limits = events.Limits(retention_days=30)
    groups: list[list[bytes]] = []
    for i in range(inserts):
        group = []
        for j in range(rows // BATCH):
            body = bodies[(i * rows // BATCH + j) % len(bodies)]
            chunk, _ = events.prepare(
                body, ndjson=True, now=now, limits=limits, batch_id=uuid.uuid4().hex
            )
            group.append(chunk)
        groups.append(group)
    with tempfile.TemporaryDirectory(prefix="tenantry-insert-cpu-") as folder:
        client = ChdbClient(folder)
        try:
            wanted = schema.TenantSchema(database="bench", retention_days=30)
            client.command(schema.create_database(wanted))
            client.command(schema.events_table(wanted, engine=engine, order_by=order_by))
            started = _cpu()
            for i, group in enumerate(groups):
                client.insert_rowbinary(
                    "bench.events", group, dedup_token=f"insert-{i}", settings=settings
                )
                time.sleep(pause)
            deadline = time.monotonic() + 60
            quiet = 0
            while quiet < 2 and time.monotonic() < deadline:  # no merge twice, 0.5 s apart
                quiet = quiet + 1 if _merging(client) == 0 else 0
                time.sleep(0.5)
            used = _cpu() - started
            (stored,) = client.query("SELECT count() AS n FROM bench.events")
        finally:
            client.close()
    total = inserts * (rows // BATCH) * BATCH
    if int(stored["n"]) != total:
        raise SystemExit(f"{variant}: {stored['n']} rows stored of {total}")
    return {"cpu_seconds": used, "rows": total, "us_per_row": used / total * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inserts", type=int, default=15)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per insert")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between inserts")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child, inserts=args.inserts, rows=args.rows, pause=args.pause)
        print(json.dumps(result))
        return
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"{args.inserts} inserts of {args.rows} rows per variant and round"
    )
    print("µs of CPU per row (all threads, merges included); ratio to v1 of the same round")
    for number in range(1, args.rounds + 1):
        measured: dict[str, float] = {}
        for variant in VARIANTS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.events_insert_cpu", "--child", variant,
                 "--inserts", str(args.inserts), "--rows", str(args.rows),
                 "--pause", str(args.pause)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            measured[variant] = json.loads(out.splitlines()[-1])["us_per_row"]
        base = measured["v1"]
        cells = ", ".join(f"{v} {us:.3f} ({us / base:.2f})" for v, us in measured.items())
        print(f"  round {number} (load {os.getloadavg()[0]:.1f}): {cells}")


if __name__ == "__main__":
    main()
