"""The product installed in a cluster whose nodes run real pods: the local real-node
cluster (``real``, tests/conftest.py) with locally built images, or, with
TENANTRY_E2E_KUBECONFIG, any other cluster (kind in users' CI) with the official ones.
Everything is reached through Services (``kubectl port-forward``), never a local
shortcut: no ClickHouse URL override, no process of the product outside the cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenantry_dev import tools
from tenantry_dev.platform import CONTROLPLANE, NAMESPACE
from tests.support.helm import Helm
from tests.support.kube import Kube
from tests.support.wait import kubectl_timeout, scaled


@dataclass(frozen=True)
class Platform:
    kube: Kube
    helm: Helm
    api: str
    """The control plane's public API, forwarded from its Service."""
    volumes_dir: Path | None
    """Where the local real node's volumes live on this machine (None elsewhere)."""


@pytest.fixture(scope="package")
def installed(request: pytest.FixtureRequest) -> Iterator[Platform]:
    """Installed once for tests/incluster (the journey, then the tenant's life after it),
    removed after it (Tenants first, so the operator's finalizers run; then the release
    and the dependencies): the real node's CPU is shared with the session's other suites
    (tests/realnode schedules pods after this)."""
    external = os.environ.get("TENANTRY_E2E_KUBECONFIG")
    if external:
        kube = Kube(kubeconfig=Path(external), kubectl=tools.ensure(("kubectl",))["kubectl"])
        where = ["--kubeconfig", external, "--images", "official"]
        volumes_dir = None
    else:
        real = request.getfixturevalue("real")
        kube = real.kube
        where = ["--state-dir", str(real.cluster.state_dir), "--images", "local"]
        volumes_dir = real.cluster.real_node.volumes_dir
    # What a platform team runs (make platform-up), not a shortcut of the test's own.
    _platform("install", *where)
    helm = Helm(kube)
    from tests.support.portforward import forward

    try:
        with forward(kube, NAMESPACE, CONTROLPLANE, 80) as api:
            yield Platform(kube, helm, api, volumes_dir)
    finally:
        _platform("uninstall", *where)


def _platform(action: str, *where: str) -> None:
    each = kubectl_timeout(300).removesuffix("s")
    subprocess.run(
        [sys.executable, "-m", "tenantry_dev", "platform", action, *where, "--timeout", each],
        check=True,
        timeout=scaled(1800),
    )
