"""What the benchmarks share: the machine's CPU model, a process's CPU time,
percentiles and a control plane served as its own process."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from tenantry_dev import services


def cpu_model() -> str:
    """The CPU's model name, as the kernel reports it (printed with every figure)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def serve_controlplane(
    *, env: dict[str, str], port: int, workers: int, log: Path, internal_port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`tenantry controlplane serve` on loopback, once it answers /readyz; (process, URL
    of the public API). The internal API on ``internal_port`` (a free port if None). No
    internal metrics listener: nothing scrapes it here."""
    server = services.serve_controlplane(
        env=env,
        port=port,
        internal_port=internal_port,
        log=log,
        workers=workers,
        extra_args=("--metrics-port", "0"),
    )
    return server, f"http://127.0.0.1:{port}"
