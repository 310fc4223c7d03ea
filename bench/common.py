"""What the benchmarks share: percentiles and a control plane served as its own process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def serve_controlplane(
    *, env: dict[str, str], port: int, workers: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """`tenantry controlplane serve` on loopback, once it answers /readyz; (process, URL)."""
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tenantry.cli",
                "controlplane",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--metrics-port",
                "0",  # no internal metrics listener: nothing scrapes it here
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"control plane did not start; see {log}")
        time.sleep(0.2)
