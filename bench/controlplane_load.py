"""Control-plane load: authorised GET of one tenant at a fixed rate, on loopback.

Starts everything for real in a temporary folder: PostgreSQL 15 and Redis 7 processes,
the local Kubernetes control plane with the Tenantry CRDs, and ``tenantry controlplane
serve`` (one uvicorn process). Then signs up, creates an org and a tenant, and sends
``GET /v1/orgs/{org}/tenants/{name}`` open-loop at ``--rps`` for ``--duration`` seconds
(requests are scheduled on a fixed timetable, so a slow server cannot slow the
generator down and hide its own latency). Latency is measured from each request's
scheduled start. Prints p50/p95/p99, errors and the achieved rate; ``--json`` writes
them too.

Target (issue 4): 500 rps for 30 s, p95 <= 20 ms on the 2-core machine, 0 errors.
Usage: python bench/controlplane_load.py [--rps 500] [--duration 30] [--json out.json]
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
from pathlib import Path

import aiohttp
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import pct, serve_controlplane  # noqa: E402
from tenantry_dev.cluster import LocalCluster, Ports  # noqa: E402
from tenantry_dev.services import (  # noqa: E402
    Postgres,
    RedisServer,
    free_port,
)

PASSWORD = "bench password long enough"  # noqa: S105 (a throwaway local account)


async def _load(
    url: str, headers: dict[str, str], *, rps: int, duration: float
) -> tuple[list[float], int, float]:
    # aiohttp rather than httpx: at hundreds of requests per second httpx's own CPU cost
    # would make the generator, not the server, the thing being measured.
    latencies: list[float] = []
    errors = 0
    total = int(rps * duration)
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as http:

        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                async with http.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter() + 0.1
        tasks = []
        for i in range(total):  # launch on a fixed timetable, whatever the server does
            scheduled = start + i / rps
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def _cpu_seconds(root: int) -> float:
    """User+system CPU of a process and its direct children (uvicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if root in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _setup(base: str) -> tuple[str, dict[str, str]]:
    with httpx.Client(base_url=base, timeout=30) as http:
        http.post("/v1/auth/signup", json={"email": "bench@example.com", "password": PASSWORD})
        r = http.post("/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        org = http.post("/v1/orgs", json={"slug": "bench", "name": "Bench"}, headers=headers)
        org_id = org.json()["id"]
        r = http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "acme"}, headers=headers)
        r.raise_for_status()
    return f"{base}/v1/orgs/{org_id}/tenants/acme", headers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rps", type=int, default=500)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1, help="control-plane processes")
    parser.add_argument(
        "--target",
        choices=["tenant", "healthz"],
        default="tenant",
        help="healthz measures the framework's own floor (no auth, no I/O)",
    )
    args = parser.parse_args()

    # A plain SIGTERM would skip the clean-up below and leave servers running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
    pg = Postgres.start(work / "pg")
    redis = RedisServer.start(work / "redis")
    cluster = LocalCluster(work / "cluster", ports=Ports.free())
    server: subprocess.Popen[bytes] | None = None
    try:
        cluster.up()
        cluster.install_crds()
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "/usr/lib/postgresql/15/bin/createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(pg.port),
                "-U",
                "postgres",
                "tenantry",
            ]
            if os.geteuid() == 0
            else [
                "/usr/lib/postgresql/15/bin/createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(pg.port),
                "-U",
                "postgres",
                "tenantry",
            ],
            check=True,
        )
        port = free_port()
        env = {
            **os.environ,
            "TENANTRY_CP_DATABASE_URL": pg.url("tenantry"),
            "TENANTRY_CP_REDIS_URL": redis.url,
            "TENANTRY_CP_KUBECONFIG": str(cluster.kubeconfig),
        }
        server, base = serve_controlplane(
            env=env, port=port, workers=args.workers, log=work / "controlplane.log"
        )
        url, headers = _setup(base)
        if args.target == "healthz":
            url = f"{base}/healthz"
        asyncio.run(_load(url, headers, rps=50, duration=2))  # warm-up
        cpu_before = _cpu_seconds(server.pid)
        latencies, errors, elapsed = asyncio.run(
            _load(url, headers, rps=args.rps, duration=args.duration)
        )
        server_cpu = _cpu_seconds(server.pid) - cpu_before
        ms = [x * 1000 for x in latencies]
        result = {
            "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "workers": args.workers,
            "target": args.target,
            "rps_target": args.rps,
            "duration_s": args.duration,
            "requests": len(ms),
            "achieved_rps": round(len(ms) / elapsed, 1),
            "errors": errors,
            "p50_ms": round(pct(ms, 0.50), 2),
            "p95_ms": round(pct(ms, 0.95), 2),
            "p99_ms": round(pct(ms, 0.99), 2),
            "max_ms": round(max(ms), 2),
            "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, len(ms)), 2),
        }
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        cluster.destroy()
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
