"""Webhook fan-out: events through the PostgreSQL outbox to loopback receivers.

Starts PostgreSQL 15 and Redis 7 processes in a temporary folder, ``tenantry
controlplane serve`` (one process, its delivery worker with the default settings but
``http://`` and loopback targets allowed), and one aiohttp receiver listening on
``--endpoints`` loopback ports. Signs up, creates one organisation per endpoint, each
with one webhook on its own port, then enqueues ``--events`` events, spread round-robin
over the organisations, each in its own transaction through
``controlplane.webhooks.service.enqueue`` (the call the notification path makes), as
fast as one connection can. Every event carries the time it was committed; the receiver
notes when it arrived (same clock).

Printed: deliveries/s (events / time from the first commit to the last arrival), p50
and p99 of event -> delivery, and the baseline measured in the same run: the same
number of signed POSTs sent straight to the same receivers by one httpx client with the
worker's concurrency (``webhook_batch``), with no database. The ratio is outbox
deliveries/s over direct POSTs/s.

Usage: python bench/webhook_fanout.py [--events 10000] [--endpoints 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import pct, serve_controlplane  # noqa: E402
from controlplane import db  # noqa: E402
from controlplane.settings import Settings  # noqa: E402
from controlplane.webhooks import service as webhooks  # noqa: E402
from controlplane.webhooks import signing  # noqa: E402
from tenantry_dev.services import Postgres, RedisServer, free_port, stop_process  # noqa: E402

PASSWORD = "bench password long enough"  # noqa: S105 (a throwaway local account)


class Receivers:
    """One aiohttp app on many loopback ports; notes each event's arrival time."""

    def __init__(self, count: int) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.arrived: dict[str, float] = {}  # event key -> arrival time
        self.sent_at: dict[str, float] = {}  # event key -> commit time (from the body)
        self.done = asyncio.Event()
        self.expected = 0
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        data = json.loads(body)["data"]
        key = str(data["key"])
        self.arrived.setdefault(key, now)
        self.sent_at[key] = float(data["t"])
        if len(self.arrived) >= self.expected:
            self.done.set()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        for port in self.ports:
            await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def reset(self, expected: int) -> None:
        self.arrived.clear()
        self.sent_at.clear()
        self.expected = expected
        self.done = asyncio.Event()


def _createdb(pg: Postgres, name: str) -> None:
    cmd = ["/usr/lib/postgresql/15/bin/createdb", "-h", "127.0.0.1", "-p", str(pg.port)]
    cmd += ["-U", "postgres", name]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True)


async def _setup(base: str, ports: list[int]) -> list[uuid.UUID]:
    """One organisation per port, each with one webhook on it; the org ids."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        r = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        r = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        orgs = []
        for i, port in enumerate(ports):
            slug = f"b{i}x{uuid.uuid4().hex[:8]}"
            r = await http.post("/v1/orgs", json={"slug": slug, "name": slug}, headers=h)
            r.raise_for_status()
            org = r.json()["id"]
            r = await http.post(
                f"/v1/orgs/{org}/webhooks",
                json={"url": f"http://127.0.0.1:{port}/hook"},
                headers=h,
            )
            r.raise_for_status()
            orgs.append(uuid.UUID(org))
        return orgs


async def _outbox_run(
    database: str, orgs: list[uuid.UUID], receivers: Receivers, *, events: int
) -> tuple[float, list[float]]:
    """Enqueue ``events`` (one transaction each); (seconds from the first commit to the
    last arrival, event -> delivery latencies in seconds)."""
    receivers.reset(events)
    conn = await asyncpg.connect(database)
    try:
        first = time.time()
        for i in range(events):
            async with conn.transaction():
                await webhooks.enqueue(
                    conn,
                    org_id=orgs[i % len(orgs)],
                    event_type="alert.firing",
                    data={"key": f"o{i}", "t": time.time()},
                )
    finally:
        await conn.close()
    await asyncio.wait_for(receivers.done.wait(), timeout=max(600, events / 5))
    last = max(receivers.arrived.values())
    latencies = [receivers.arrived[k] - receivers.sent_at[k] for k in receivers.arrived]
    return last - first, latencies


async def _direct_run(
    ports: list[int], receivers: Receivers, events: int, concurrency: int
) -> float:
    """The baseline: the same signed POSTs straight to the receivers; seconds taken."""
    receivers.reset(events)
    secret = signing.new_secret()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(events):
        queue.put_nowait(i)
    started = time.time()
    async with httpx.AsyncClient(timeout=10) as client:

        async def sender() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = webhooks.payload("alert.firing", {"key": f"d{i}", "t": time.time()}).encode()
                headers = signing.headers(
                    secret, msg_id=f"msg_{i}", timestamp=int(time.time()), body=body
                )
                port = ports[i % len(ports)]
                r = await client.post(
                    f"http://127.0.0.1:{port}/hook", content=body, headers=headers
                )
                r.raise_for_status()

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    await asyncio.wait_for(receivers.done.wait(), timeout=60)
    return time.time() - started


async def _bench(base: str, database: str, args: argparse.Namespace) -> dict[str, Any]:
    receivers = Receivers(args.endpoints)
    await receivers.start()
    try:
        orgs = await _setup(base, receivers.ports)
        await _outbox_run(database, orgs, receivers, events=min(200, args.events))  # warm-up
        elapsed, latencies = await _outbox_run(database, orgs, receivers, events=args.events)
        concurrency = Settings.model_fields["webhook_batch"].default
        direct = await _direct_run(
            receivers.ports, receivers, events=args.events, concurrency=concurrency
        )
    finally:
        await receivers.stop()
    ms = [x * 1000 for x in latencies]
    outbox_rate = args.events / elapsed
    direct_rate = args.events / direct
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "events": args.events,
        "endpoints": args.endpoints,
        "outbox_deliveries_per_s": round(outbox_rate, 1),
        "event_to_delivery_p50_ms": round(pct(ms, 0.50), 1),
        "event_to_delivery_p99_ms": round(pct(ms, 0.99), 1),
        "event_to_delivery_max_ms": round(max(ms), 1),
        "direct_posts_per_s": round(direct_rate, 1),
        "ratio_outbox_over_direct": round(outbox_rate / direct_rate, 3),
        "worker": {
            "batch": concurrency,
            "poll_s": Settings.model_fields["webhook_poll_seconds"].default,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    # A plain SIGTERM would skip the clean-up below and leave servers running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
    pg = Postgres.start(work / "pg")
    redis = RedisServer.start(work / "redis")
    server: subprocess.Popen[bytes] | None = None
    try:
        _createdb(pg, "tenantry")
        database = pg.url("tenantry")
        asyncio.run(db.migrate_url(database))
        env = {
            **os.environ,
            "TENANTRY_CP_DATABASE_URL": database,
            "TENANTRY_CP_REDIS_URL": redis.url,
            "TENANTRY_CP_KUBE_ENABLED": "false",
            "TENANTRY_CP_WEBHOOK_ALLOW_HTTP": "true",
            "TENANTRY_CP_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        }
        server, base = serve_controlplane(
            env=env, port=free_port(), workers=1, log=work / "controlplane.log"
        )
        result = asyncio.run(_bench(base, database, args))
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    finally:
        if server is not None:
            stop_process(server, grace=20)
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
