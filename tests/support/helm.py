"""helm against one test cluster (its kubeconfig): the binary the dev harness builds
(tenantry_dev.tools), the output as helm prints it. Timeouts are unscaled seconds
(tests/support/wait.py scales them)."""

from __future__ import annotations

import subprocess

from tenantry_dev import tools
from tests.support.kube import Kube
from tests.support.wait import scaled


class Helm:
    def __init__(self, kube: Kube) -> None:
        self.binary = tools.ensure(("helm",))["helm"]
        self.kube = kube
        self.notes = ""
        """What `helm install` printed, when the caller keeps it."""

    def _helm(
        self, args: tuple[str, ...], *, stdin: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kube.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=scaled(timeout),
            check=False,
        )

    def try_run(self, *args: str, timeout: float = 600) -> int:
        """helm with ``args``; its exit status (teardown: every step is tried)."""
        return self._helm(args, stdin=None, timeout=timeout).returncode

    def run(self, *args: str, stdin: str | None = None, timeout: float = 600) -> str:
        """helm with ``args``, which must succeed; its output. ``timeout`` lies above any
        ``--timeout`` among ``args``."""
        proc = self._helm(args, stdin=stdin, timeout=timeout)
        assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}"
        return proc.stdout
