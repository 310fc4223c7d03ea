"""Find (or build, through ``scripts/tools.sh``) the pinned control-plane binaries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

K8S_VERSION = "1.34.4"
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
# The real node's binaries (cluster up --nodes real), built on demand.
REAL_NODE = ("kubelet", "kube-proxy", "coredns")
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


def prometheus_operator_crds() -> Path:
    """The folder of the prometheus-operator CRDs (``monitoring.coreos.com_*.yaml``),
    taken out of their Go module by ``scripts/tools.sh`` (at its pinned version) when
    missing."""
    script = REPO / "scripts" / "tools.sh"
    env = {**os.environ, "K8S_VERSION": K8S_VERSION}
    found = subprocess.run(
        ["bash", str(script), "--print-crd-dir"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    directory = Path(found.stdout.strip())
    if not any(directory.glob("monitoring.coreos.com_*.yaml")):
        subprocess.run(["bash", str(script), "prometheus-operator-crds"], check=True, env=env)
    return directory


def node_images() -> Path:
    """The folder of the real node's image tarballs (pause.tar, toolbox.tar), built by
    ``scripts/node-images.sh`` (docker, from the local Debian base) when missing."""
    script = str(REPO / "scripts" / "node-images.sh")
    # Its progress goes to our stderr; the folder is asked for separately.
    subprocess.run(["bash", script], check=True, stdout=sys.stderr)
    where = subprocess.run(
        ["bash", script, "--print-dir"], check=True, capture_output=True, text=True
    )
    directory = Path(where.stdout.strip())
    missing = [n for n in ("pause.tar", "toolbox.tar") if not (directory / n).is_file()]
    if missing:
        raise RuntimeError(f"scripts/node-images.sh left no {', '.join(missing)} in {directory}")
    return directory
