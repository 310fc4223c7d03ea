"""What the per-API-key rate limit costs on ingestion's request path, measured apart.

Why: after the restructuring (issue 15) ingestion lost about 5 % of its events per
CPU-second, and the suspect was the per-key limit check, a second Redis round trip per
batch. The end-to-end benchmark (`bench/ingest_throughput.py`) cannot show a 5 % effect
on this shared 2-core machine (its run-to-run spread is larger), so this one runs only
the Redis side of a request, in one process against a real `redis-server`, both ways in
turn, interleaved over several rounds:

- `none`: the append alone (`Stream.append`, the plain pipelined XADD + XLEN);
- `limited`: the service's per-key check (`ingestion.server.KeyLimit.hit`, one
  moving-window hit in Redis), then the append.

`--concurrency` senders of one API key each take a turn for the append as the service
does (`asyncio.Lock`), with batches of `--bytes` (about a 1,000-event batch in
RowBinary). The limit is high enough that nothing is refused: this is the cost of
counting. Printed: CPU microseconds per batch of this process and of redis-server
(from /proc), and the total of `limited` as a ratio to `none` in the same round.

Run: `.venv/bin/python -m bench.ingest_key_limit [--rounds 5] [--batches 1000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.exceptions import RedisError

from bench.common import cpu_model, cpu_seconds
from ingestion import server
from ingestion import stream as stream_module
from tenantry import ratelimit
from tenantry_dev import services

KEY = "bench-key"
TENANT = "bench"


async def _round(
    check: Callable[[], Awaitable[object]] | None,
    stream: stream_module.Stream,
    *,
    rows: bytes,
    batches: int,
    concurrency: int,
    redis_pid: int,
) -> tuple[float, float]:
    """(this process's, redis-server's) CPU microseconds per batch."""
    turn = asyncio.Lock()
    left = batches

    async def sender() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            if check is not None:
                await check()
            async with turn:
                await stream.append(
                    rows, count=1000, size=len(rows), batch_id="b", max_backlog=10**9
                )

    await stream.redis.delete(stream.names.stream)
    own, redis = time.process_time(), cpu_seconds(redis_pid)
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    own, redis = time.process_time() - own, cpu_seconds(redis_pid) - redis
    return own / batches * 1e6, redis / batches * 1e6


async def main_async(args: argparse.Namespace, *, port: int, redis_pid: int) -> None:
    redis = stream_module.connect(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            try:
                await redis.ping()
                break
            except RedisError:  # not listening yet
                await asyncio.sleep(0.05)
        stream = stream_module.Stream(redis, stream_module.Names.for_prefix("bench"))
        window = ratelimit.MovingWindow(redis)
        limit = ratelimit.per_window(10**9, 1)
        key_limit = server.KeyLimit(window, tenant=TENANT, limit=limit)
        ways: dict[str, Callable[[], Awaitable[object]] | None] = {
            "none": None,
            "limited": lambda: key_limit.hit(KEY),
        }
        rows = os.urandom(args.bytes)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        for number in range(args.rounds + 1):  # the first round warms up
            for name, check in ways.items():
                measured = await _round(
                    check, stream, rows=rows, batches=args.batches,
                    concurrency=args.concurrency, redis_pid=redis_pid,
                )  # fmt: skip
                if number:
                    results[name].append(measured)
    finally:
        await redis.aclose()
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {cpu_model()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"{args.rounds} rounds of {args.batches} batches of {args.bytes} bytes, "
        f"{args.concurrency} concurrent senders of one key"
    )
    base = [own + red for own, red in results["none"]]
    for name, runs in results.items():
        totals = [own + red for own, red in runs]
        ratios = [t / b for t, b in zip(totals, base, strict=True)]
        print(
            f"{name:>12}: CPU per batch {statistics.median(totals):.0f} us "
            f"(python {statistics.median(o for o, _ in runs):.0f}, "
            f"redis {statistics.median(r for _, r in runs):.0f}); x none per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=1000, help="per way and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bytes", type=int, default=120_000, help="RowBinary bytes per batch")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing (Debian package redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="tenantry-key-limit-"))
    port = services.free_port()
    redis_server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        asyncio.run(main_async(args, port=port, redis_pid=redis_server.pid))
    finally:
        redis_server.terminate()
        redis_server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
