"""The product installed in a cluster whose nodes run real pods: the local real-node
cluster (``real``, tests/conftest.py) with locally built images, or, with
TENANTRY_E2E_KUBECONFIG, any other cluster (kind in users' CI) with the official ones.
Everything is reached through Services (``kubectl port-forward``), never a local
shortcut: no ClickHouse URL override, no process of the product outside the cluster."""

from __future__ import annotations

import base64
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

    def secret(self, namespace: str, name: str, key: str) -> str:
        data = self.kube.get("secret", name, "-n", namespace)["data"]
        return base64.b64decode(data[key]).decode()


@pytest.fixture(scope="module")
def installed(request: pytest.FixtureRequest) -> Iterator[Platform]:
    """Installed for the module, removed after it (Tenants first, so the operator's
    finalizers run; then the release and the dependencies): the real node's CPU is
    shared with the session's other suites (tests/realnode schedules pods after this)."""
    external = os.environ.get("TENANTRY_E2E_KUBECONFIG")
    if external:
        kube = Kube(kubeconfig=Path(external), kubectl=tools.ensure(("kubectl",))["kubectl"])
        images = platform.Images.official()
    else:
        real = request.getfixturevalue("real")
        kube = real.kube
        images = platform.Images.local()
        platform.load(real.cluster.state_dir, images.archives)
    helm = platform.install(kube, images)
    from tests.support.portforward import forward

    try:
        with forward(kube, platform.NAMESPACE, platform.CONTROLPLANE, 80) as api:
            yield Platform(kube, helm, api)
    finally:
        platform.uninstall(kube, helm)
