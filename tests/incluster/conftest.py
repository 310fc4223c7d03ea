"""The product installed in a cluster whose nodes run real pods: the local real-node
cluster (``real``, tests/conftest.py) with locally built images, or, with
TENANTRY_E2E_KUBECONFIG, any other cluster (kind in users' CI) with the official ones.
Everything is reached through Services (``kubectl port-forward``), never a local
shortcut: no ClickHouse URL override, no process of the product outside the cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenantry_dev import tools
from tests.incluster import platform
from tests.support.kube import Kube


@dataclass(frozen=True)
class Platform:
    kube: Kube
    helm: platform.Helm
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
        images = platform.Images.official()
        volumes_dir = None
    else:
        real = request.getfixturevalue("real")
        kube = real.kube
        images = platform.Images.local()
        volumes_dir = real.cluster.real_node.volumes_dir
        platform.load(real.cluster.state_dir, images.archives)
    helm = platform.install(kube, images)
    from tests.support.portforward import forward

    try:
        with forward(kube, platform.NAMESPACE, platform.CONTROLPLANE, 80) as api:
            yield Platform(kube, helm, api, volumes_dir)
    finally:
        platform.uninstall(kube, helm)
