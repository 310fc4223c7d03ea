"""Ingestion end to end on loopback: HTTP -> Redis Stream -> writer -> ClickHouse engine (chDB).

Why: the issue's targets are >= 100,000 events/s per core through the whole
path and a 202 ack p99 <= 50 ms at half of the maximum throughput. This starts
the real pieces (redis-server with AOF, `python -m ingestion` with its writer
on a chDB directory) and drives them with NDJSON batches over HTTP:

1. max throughput: `--concurrency` senders in a closed loop for `--seconds`;
   then it waits until the writer has inserted every accepted event (the
   `tenantry_ingest_inserted_rows_total` metric) and checks the row count in
   the engine afterwards. "Per core" divides events by the CPU seconds the
   service process and redis-server used (read from /proc), since the load
   generator shares this machine's cores.
   The same loop is run again with an Idempotency-Key on every request, and its
   events per CPU-second are printed as a ratio to the run without keys (its cost).
2. ack latency: an open loop at `--load` (default 50%) of the end-to-end
   rate measured in 1, one batch every 1/rate seconds, each 202 timed.
3. durability levels (`--durability`, the tenant's `spec.redis.durability`): the
   same Redis is switched by CONFIG SET to each level's `appendfsync` in turn, the
   default EverySecond first, and the closed loop of 1. is repeated at each, then an
   ack-latency run at each, all at one rate: `--load` of the lowest end-to-end maximum
   of the round's levels; `--durability-rounds` times, alternating, and each
   level is printed as a ratio to the default measured in the same round, next to it
   (the machine's load drifts between rounds).

Run: `.venv/bin/python -m bench.ingest_throughput [--batch 1000] [--seconds 10]
[--durability Always]`. The AOF lives in a temporary folder: its file system is the one
fsync pays for (printed).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from bench.common import cpu_model, cpu_seconds
from ingestion.settings import key_digest
from tenantry.api.tenant import Durability
from tenantry_dev import services

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-key"


def _bodies(count: int, batch: int) -> list[bytes]:
    """`count` different NDJSON batches of `batch` events (no event ids: the service adds them)."""
    now = dt.datetime.now(dt.UTC)
    bodies = []
    for b in range(count):
        lines = []
        for i in range(batch):
            ts = (now - dt.timedelta(seconds=i)).isoformat(timespec="milliseconds")
            event = {
                "event": ("page_view", "signup", "purchase", "click")[i % 4],
                "user_id": f"user-{(b * batch + i) % 50_000}",
                "timestamp": ts,
                "properties": {"path": f"/p/{i % 100}", "plan": "pro", "n": i},
            }
            lines.append(json.dumps(event, separators=(",", ":")))
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies


def _fs_of(folder: Path) -> str:
    """The file system type and device under ``folder`` (what an fsync there costs)."""
    best = ("", "?", "?")
    for line in Path("/proc/self/mounts").read_text().splitlines():
        device, mountpoint, fstype = line.split()[:3]
        if str(folder).startswith(mountpoint) and len(mountpoint) >= len(best[0]):
            best = (mountpoint, device, fstype)
    return f"{best[2]} {best[1]}"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Stack:
    """redis-server and the ingestion service, in a temporary folder."""

    def __init__(self, folder: Path, *, flush_rows: int | None, split: bool) -> None:
        self.folder = folder
        self.redis_port = services.free_port()
        self.http_port = services.free_port()
        self.metrics_port = services.free_port()
        redis = shutil.which("redis-server")
        if redis is None:
            raise SystemExit("redis-server is missing (Debian package redis-server)")
        self.redis = subprocess.Popen(
            [redis, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", str(folder),
             "--save", "", "--appendonly", "yes",
             "--appendfsync", Durability.EVERY_SECOND.appendfsync],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        env = {
            **os.environ,
            "TENANTRY_TENANT": "bench",
            "TENANTRY_LISTEN": f"127.0.0.1:{self.http_port}",
            "TENANTRY_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
            "TENANTRY_REDIS_HOST": "127.0.0.1",
            "TENANTRY_REDIS_PORT": str(self.redis_port),
            "TENANTRY_CLICKHOUSE_URL": f"chdb://{folder / 'chdb'}",
            "TENANTRY_RETENTION_DAYS": "30",
            "TENANTRY_INGEST_KEYS": key_digest(KEY),
            "TENANTRY_INGEST_MAX_BACKLOG": "1000000",
        }
        if flush_rows is not None:  # else the service's default
            env["TENANTRY_INGEST_FLUSH_ROWS"] = str(flush_rows)
        self.log = (folder / "ingest.log").open("wb")
        command = [sys.executable, "-m", "ingestion"]
        self.service = subprocess.Popen(
            [*command, "--no-writer"] if split else command, cwd=REPO, env=env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.writer: subprocess.Popen[bytes] | None = None
        metrics_port = self.metrics_port
        if split:  # the writer in its own process, with its own listeners
            metrics_port = services.free_port()
            self.writer = subprocess.Popen(
                [*command, "--writer-only"], cwd=REPO,
                env={**env, "TENANTRY_LISTEN": f"127.0.0.1:{services.free_port()}",
                     "TENANTRY_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"},
                stdout=self.log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        # The writer's counters, on its internal metrics listener.
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    async def durability(self, level: Durability) -> None:
        """Switch the running Redis to ``level`` (its appendfsync), as the operator would
        start it."""
        client = Redis(host="127.0.0.1", port=self.redis_port)
        try:
            await client.config_set("appendfsync", level.appendfsync)
            assert await client.config_get("appendfsync") == {"appendfsync": level.appendfsync}
        finally:
            await client.aclose()

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process of the stack."""
        used = {"http": cpu_seconds(self.service.pid), "redis": cpu_seconds(self.redis.pid)}
        if self.writer is not None:
            used["writer"] = cpu_seconds(self.writer.pid)
        return used

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 60
        urls = [f"{self.url}/readyz", self.metrics_url]
        while time.monotonic() < deadline:
            if self.service.poll() is not None or (self.writer and self.writer.poll()):
                raise SystemExit((self.folder / "ingest.log").read_text())
            try:
                for url in urls:
                    async with session.get(url) as resp:
                        if resp.status != 200:
                            raise aiohttp.ClientError(url)
                return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        raise SystemExit("the ingestion service did not become ready")

    async def inserted(self, session: aiohttp.ClientSession) -> int:
        async with session.get(self.metrics_url) as resp:
            for line in (await resp.text()).splitlines():
                if line.startswith("tenantry_ingest_inserted_rows_total "):
                    return int(float(line.split()[1]))
        return 0

    def stop(self) -> None:
        for proc in (self.service, self.writer):
            if proc is None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis.terminate()
        self.redis.wait(timeout=10)
        self.log.close()


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, idempotency_key: str | None = None
) -> float:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-ndjson"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        if resp.status != 202:
            raise RuntimeError(f"POST answered {resp.status}")
    return time.perf_counter() - started


async def max_throughput(
    stack: Stack, session: aiohttp.ClientSession, *, bodies: list[bytes], batch: int,
    seconds: float, concurrency: int, keyed: bool = False,
) -> dict[str, float]:  # fmt: skip
    """Closed-loop senders; ``keyed``: each request carries its own Idempotency-Key (a
    producer that could retry), so every append also records its key."""
    url = f"{stack.url}/v1/events"
    run = time.monotonic_ns()
    before = await stack.inserted(session)
    cpu0, t0 = stack.cpu(), time.perf_counter()
    sent = 0

    async def sender(offset: int) -> None:
        nonlocal sent
        i = offset
        while time.perf_counter() - t0 < seconds:
            key = f"{run}-{i}" if keyed else None
            await _post(session, url, bodies[i % len(bodies)], key)
            sent += batch
            i += concurrency

    await asyncio.gather(*(sender(k) for k in range(concurrency)))
    accept_time = time.perf_counter() - t0
    while await stack.inserted(session) - before < sent:  # noqa: ASYNC110 - polls another process
        await asyncio.sleep(0.05)
    e2e_time = time.perf_counter() - t0
    used = {name: seconds - cpu0[name] for name, seconds in stack.cpu().items()}
    cpu = sum(used.values())
    return {
        "events": sent,
        "accepted_per_s": sent / accept_time,
        "e2e_per_s": sent / e2e_time,
        "cpu_seconds": cpu,
        "per_core": sent / cpu,
        **{f"cpu.{name}": seconds for name, seconds in used.items()},
    }


async def ack_latency(
    stack: Stack, session: aiohttp.ClientSession, *, bodies: list[bytes], batch: int,
    rate: float, seconds: float,
) -> dict[str, float]:  # fmt: skip
    url = f"{stack.url}/v1/events"
    interval = batch / rate
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def one(body: bytes) -> None:
        latencies.append(await _post(session, url, body))

    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        tasks.append(asyncio.create_task(one(bodies[n % len(bodies)])))
        n += 1
        await asyncio.sleep(max(0.0, t0 + n * interval - time.perf_counter()))
    await asyncio.gather(*tasks)
    return {
        "requests": len(latencies),
        "rate": n * batch / (time.perf_counter() - t0),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


async def main_async(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tenantry-ingest-bench-"))
    stack = Stack(folder, flush_rows=args.flush_rows, split=args.split)
    bodies = _bodies(32, args.batch)
    connector = aiohttp.TCPConnector(limit=256)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await stack.ready(session)
            await max_throughput(
                stack, session, bodies=bodies, batch=args.batch, seconds=2,
                concurrency=args.concurrency,
            )  # fmt: skip  # warm-up
            best = await max_throughput(
                stack, session, bodies=bodies, batch=args.batch, seconds=args.seconds,
                concurrency=args.concurrency,
            )  # fmt: skip
            keyed = await max_throughput(
                stack, session, bodies=bodies, batch=args.batch, seconds=args.seconds,
                concurrency=args.concurrency, keyed=True,
            )  # fmt: skip
            rate = best["e2e_per_s"] * args.load
            lat = await ack_latency(
                stack, session, bodies=bodies, batch=args.batch, rate=rate, seconds=args.seconds
            )
            rounds: list[dict[Durability, tuple[dict[str, float], dict[str, float]]]] = []
            others = [level for level in args.durability if level is not Durability.EVERY_SECOND]
            for _ in range(args.durability_rounds if others else 0):
                maxima = {}
                for level in [Durability.EVERY_SECOND, *others]:
                    await stack.durability(level)
                    maxima[level] = await max_throughput(
                        stack, session, bodies=bodies, batch=args.batch, seconds=args.seconds,
                        concurrency=args.concurrency,
                    )  # fmt: skip
                # every level's latency at one rate that each of them sustains
                level_rate = args.load * min(m["e2e_per_s"] for m in maxima.values())
                measured = {}
                for level, level_max in maxima.items():
                    await stack.durability(level)
                    measured[level] = level_max, await ack_latency(
                        stack, session, bodies=bodies, batch=args.batch, rate=level_rate,
                        seconds=args.seconds,
                    )  # fmt: skip
                rounds.append(measured)
            await stack.durability(Durability.EVERY_SECOND)
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    where = "in its own process" if args.split else "in the HTTP process"
    print(
        f"batches of {args.batch} NDJSON events, {args.concurrency} concurrent senders, "
        f"redis AOF on, writer {where}, chDB engine; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"max: {best['events']:.0f} events; accepted {best['accepted_per_s']:,.0f}/s, "
        f"end to end (inserted) {best['e2e_per_s']:,.0f}/s; service+redis CPU "
        f"{best['cpu_seconds']:.1f} s -> {best['per_core']:,.0f} events/s per core"
    )
    print(
        f"with an Idempotency-Key on every request: {keyed['per_core']:,.0f} events/s per "
        f"core, {keyed['per_core'] / best['per_core']:.2f} x the run without keys"
    )
    split = ", ".join(
        f"{k[4:]} {v / best['events'] * 1e6:.1f}" for k, v in best.items() if k.startswith("cpu.")
    )
    print(f"CPU per event (µs): {split}")
    print(
        f"ack at {args.load:.0%} of max ({lat['rate']:,.0f} events/s, {lat['requests']:.0f} "
        f"requests): p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
        f"max {lat['max_ms']:.1f} ms"
    )
    if rounds:
        print(f"durability levels (AOF on {_fs_of(folder)}), each round: the level, and its ratio")
        print(f"to {Durability.EVERY_SECOND.value} measured in the same round")
    for number, measured in enumerate(rounds, 1):
        base_max, base_lat = measured[Durability.EVERY_SECOND]
        for level, (level_max, level_lat) in measured.items():
            print(
                f"  round {number} {level.value} (appendfsync {level.appendfsync}): "
                f"{level_max['per_core']:,.0f} events/s per core "
                f"({level_max['per_core'] / base_max['per_core']:.2f} x), accepted "
                f"{level_max['accepted_per_s']:,.0f}/s "
                f"({level_max['accepted_per_s'] / base_max['accepted_per_s']:.2f} x), "
                f"end to end {level_max['e2e_per_s']:,.0f}/s "
                f"({level_max['e2e_per_s'] / base_max['e2e_per_s']:.2f} x); ack at "
                f"{level_lat['rate']:,.0f} events/s: p50 {level_lat['p50_ms']:.1f} ms "
                f"({level_lat['p50_ms'] / base_lat['p50_ms']:.2f} x), p99 "
                f"{level_lat['p99_ms']:.1f} ms ({level_lat['p99_ms'] / base_lat['p99_ms']:.2f} x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="events per POST")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--load", type=float, default=0.5, help="fraction of max for latency")
    parser.add_argument(
        "--flush-rows", type=int, default=None, help="writer flush size (default: the service's)"
    )
    parser.add_argument(
        "--split", action="store_true", help="writer in its own process (--writer-only)"
    )
    parser.add_argument(
        "--durability",
        type=lambda text: [Durability(v) for v in text.split(",") if v],
        default=[Durability.ALWAYS],
        help="durability levels to measure besides the default EverySecond, comma-separated "
        "(Always); empty: none",
    )
    parser.add_argument(
        "--durability-rounds", type=int, default=2, help="rounds of the durability levels"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
