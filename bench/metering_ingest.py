"""Usage metering throughput: batches of usage events into PostgreSQL through the API.

Why this shape: the ingestion services and the operator report usage in batches over
HTTP, and the promise is that nothing is counted twice however often a batch is
retried. So the benchmark runs the real path end to end on loopback: PostgreSQL 15 and
Redis 7 processes in a temporary folder, ``tenantry controlplane serve`` (uvicorn, real
TCP, ``--workers N``), and an aiohttp client posting
``POST /internal/v1/orgs/{org}/usage`` (the internal listener) with the internal service
token. A share of the batches (``--dup-ratio``) is sent a second time, some of them
concurrently with the first copy, as retries would be.

Afterwards it checks PostgreSQL directly: rows stored, the sum of quantities, and the
accepted counts the API reported must all equal the unique events sent; any excess is
a double count. Request bodies are encoded before the clock starts, so the figure is
the server's, not the JSON encoder's of the client (which shares the 2 cores).

Target (issue 5): >= 20,000 events/s on the 2-core machine, 0 double counts.
Usage: python bench/metering_ingest.py [--events 300000] [--batch 1000]
       [--concurrency 8] [--workers 2] [--dup-ratio 0.1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import serve_controlplane  # noqa: E402
from tenantry import internal_api  # noqa: E402
from tenantry_dev.services import (  # noqa: E402
    Postgres,
    RedisServer,
    free_port,
)

TOKEN = "bench-internal-token-0123456789"  # noqa: S105 (a throwaway local server)
PASSWORD = "bench password long enough"  # noqa: S105
METRICS = ("events_ingested", "bytes_ingested", "dashboard_queries", "clickhouse_host_hours")


def _batches(*, events: int, batch: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    bodies = []
    for start in range(0, events, batch):
        items = [
            {
                "metric": METRICS[i % len(METRICS)],
                "tenant": f"t{i % 10}",
                "quantity": 1 + i % 7,
                "timestamp": now,
                "idempotency_key": f"ev-{i}",
            }
            for i in range(start, min(events, start + batch))
        ]
        bodies.append(json.dumps({"events": items}).encode())
    return bodies


async def _send(url: str, bodies: list[bytes], *, concurrency: int) -> tuple[float, int, int, int]:
    """Post every body; (seconds, accepted, duplicates, errors)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted = duplicates = errors = 0
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as http:

        async def worker() -> None:
            nonlocal accepted, duplicates, errors
            while not queue.empty():
                body = queue.get_nowait()
                async with http.post(url, data=body) as r:
                    if r.status != 200:
                        errors += 1
                        continue
                    result = await r.json()
                    accepted += int(result["accepted"])
                    duplicates += int(result["duplicates"])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, accepted, duplicates, errors


def _setup(base: str) -> str:
    email = f"bench-{os.getpid()}@example.com"
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}).is_success
        login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        r = http.post("/v1/orgs", json={"slug": "bench", "name": "bench"}, headers=auth)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def _check(url: str, *, unique: int, expected_sum: int) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = int(await conn.fetchval("SELECT count(*) FROM usage_events"))
        total = int(await conn.fetchval("SELECT coalesce(sum(quantity), 0) FROM usage_events"))
    finally:
        await conn.close()
    return {
        "rows": rows,
        "quantity_sum": total,
        "double_counts": rows - unique,
        "quantity_excess": total - expected_sum,
    }


async def _create_db(pg: Postgres) -> None:
    admin = await asyncpg.connect(pg.admin_url)
    try:
        await admin.execute("CREATE DATABASE tenantry")
    finally:
        await admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="control-plane processes")
    parser.add_argument("--dup-ratio", type=float, default=0.1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="tenantry-metering-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
    pg = Postgres.start(work / "pg")
    redis = RedisServer.start(work / "redis")
    server: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(_create_db(pg))
        port = free_port()
        env = {
            **os.environ,
            "TENANTRY_CP_DATABASE_URL": pg.url("tenantry"),
            "TENANTRY_CP_REDIS_URL": redis.url,
            "TENANTRY_CP_KUBE_ENABLED": "false",
            "TENANTRY_CP_INTERNAL_TOKEN": TOKEN,
            "TENANTRY_CP_DB_POOL_MAX": str(max(2, args.concurrency // args.workers + 1)),
        }
        internal_port = free_port()
        server, base = serve_controlplane(
            env=env,
            port=port,
            internal_port=internal_port,
            workers=args.workers,
            log=work / "controlplane.log",
        )
        org_id = _setup(base)
        bodies = _batches(events=args.events, batch=args.batch)
        rng = random.Random(7)
        retries = rng.sample(bodies, int(len(bodies) * args.dup_ratio))
        sent = list(bodies)
        for body in retries:  # a retry lands right after the original or anywhere later
            at = sent.index(body) + (1 if rng.random() < 0.5 else rng.randrange(len(sent)))
            sent.insert(min(at, len(sent)), body)
        url = f"http://127.0.0.1:{internal_port}" + internal_api.usage_path(org_id)
        seconds, accepted, duplicates, errors = asyncio.run(
            _send(url, sent, concurrency=args.concurrency)
        )
        expected_sum = sum(1 + i % 7 for i in range(args.events))
        check = asyncio.run(
            _check(pg.url("tenantry"), unique=args.events, expected_sum=expected_sum)
        )
        submitted = sum(len(json.loads(b)["events"]) for b in sent)
        result: dict[str, Any] = {
            "events_unique": args.events,
            "events_submitted": submitted,
            "batch": args.batch,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "seconds": round(seconds, 2),
            "unique_events_per_s": round(args.events / seconds),
            "submitted_events_per_s": round(submitted / seconds),
            "api_accepted": accepted,
            "api_duplicates": duplicates,
            "http_errors": errors,
            **check,
            "api_double_counts": accepted - args.events,
            "cpus": os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        ok = (
            check["double_counts"] == 0
            and check["quantity_excess"] == 0
            and accepted == args.events
        )
        return 0 if ok and errors == 0 else 1
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
