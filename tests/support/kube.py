"""A thin kubectl wrapper for tests: what an admin would type, with its real output.

Waits live in tests/support/wait.py (``eventually``), not here."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.wait import scaled


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Kube:
    kubeconfig: Path
    kubectl: Path

    def env(self) -> dict[str, str]:
        import os

        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def try_run(self, *args: str, stdin: str | None = None, timeout: float = 180) -> Result:
        """kubectl with ``args``; ``timeout``: unscaled seconds (tests/support/wait.py)."""
        proc = subprocess.run(
            [str(self.kubectl), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=scaled(timeout),
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def run(self, *args: str, stdin: str | None = None, timeout: float = 180) -> str:
        res = self.try_run(*args, stdin=stdin, timeout=timeout)
        if res.code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.code}): {res.stderr}")
        return res.stdout

    def apply(self, obj: dict[str, Any]) -> str:
        return self.run("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(obj))

    def create(self, obj: dict[str, Any]) -> Result:
        return self.try_run("create", "-f", "-", stdin=yaml.safe_dump(obj))

    def get(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json"))

    def get_or_none(self, *args: str) -> Any:
        res = self.try_run("get", *args, "-o", "json")
        if res.code != 0:
            if "NotFound" in res.stderr:
                return None
            raise AssertionError(res.stderr)
        return json.loads(res.stdout)


def resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A manifest of one of our (cluster-scoped) kinds."""
    return {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def tenant(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A Tenant manifest."""
    return resource("Tenant", name, spec)
