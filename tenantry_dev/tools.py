"""Find (or build, through ``scripts/tools.sh``) the pinned control-plane binaries."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

K8S_VERSION = "1.34.4"
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
REPO = Path(__file__).resolve().parents[1]  # tenantry_dev/ sits in the repository root


def bin_dir() -> Path:
    cache = Path(os.environ.get("TENANTRY_CACHE", Path.home() / ".cache" / "tenantry"))
    return cache / "bin" / f"k8s-{K8S_VERSION}"


def ensure(names: tuple[str, ...] = NAMES) -> dict[str, Path]:
    """Paths of the binaries, building the missing ones first (minutes when cold)."""
    directory = bin_dir()
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        script = REPO / "scripts" / "tools.sh"
        subprocess.run(
            ["bash", str(script), *missing],
            check=True,
            env={**os.environ, "K8S_VERSION": K8S_VERSION},
        )
    return {n: directory / n for n in names}
