"""The real operator as a child process that tests can stop, kill and restart."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tenantry_dev.services import free_port
from tests.support.wait import eventually, stop_process


@dataclass
class OperatorProcess:
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def scrape(self) -> str:
        """The operator's /metrics, from its metrics listener."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    def start(self, timeout: float = 120) -> None:
        """Start it and return once its liveness endpoint answers (``timeout``: unscaled
        seconds); a process that failed to start is stopped before this raises."""
        with self.log.open("ab") as out:
            proc = self.proc = subprocess.Popen(
                [sys.executable, "-m", "tenantry_cli", "operator", "--liveness", self.url],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"TENANTRY_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}", **self.env},
            )

        def alive() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"operator exited:\n{self.log.read_text()[-4000:]}")
            with urllib.request.urlopen(self.url, timeout=2) as resp:  # noqa: S310
                return int(resp.status) == 200

        try:
            eventually(alive, what="operator liveness", timeout=timeout, ignore=(OSError,))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time (tests/support/wait.py)."""
        if self.proc is not None:
            stop_process(self.proc, grace=30, what="operator")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies under the operator."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            stop_process(self.proc, what="operator")
