"""Session fixtures that start real components.

The Kubernetes fixture starts the local control plane (etcd, kube-apiserver,
controller-manager, scheduler, kwok) in a temporary directory on free ports, unless
TENANTRY_E2E_KUBECONFIG points at an existing cluster (a kind cluster in users' CI):
then the same tests run against that.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kube import Kube, eventually

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    from tenantry.devcluster import tools

    kubectl = tools.ensure(("kubectl",))["kubectl"]
    external = os.environ.get("TENANTRY_E2E_KUBECONFIG")
    if external:
        yield Kube(kubeconfig=Path(external), kubectl=kubectl)
        return
    from tenantry.devcluster.cluster import LocalCluster, Ports

    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), ports=Ports.free())
    took = cluster.up()
    print(f"\nlocal control plane started in {took:.1f} s")
    try:
        yield Kube(kubeconfig=cluster.kubeconfig, kubectl=kubectl)
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def crds(kube: Kube) -> Kube:
    """The Tenantry CRDs installed and Established."""
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for name in ("tenants.tenantry.io", "dashboards.tenantry.io"):
        kube.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")

    # The API server publishes the OpenAPI of a new CRD a moment after Established.
    def explained() -> bool:
        return all(kube.try_run("explain", k).code == 0 for k in ("tenant", "dashboard"))

    eventually(explained, timeout=60, what="OpenAPI of the CRDs")
    return kube


def pytest_report_header() -> list[str]:
    try:
        go = subprocess.run(
            ["go", "version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        go = "go: not found"
    return [f"tenantry: {go}"]


@pytest.fixture(scope="session")
def operator_process(crds: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tenantry operator` running against the cluster; yields its liveness URL."""
    import sys
    import time
    import urllib.request

    from tenantry.devcluster.cluster import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "operator", "--liveness", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=crds.env(),
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"operator did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if os.environ.get("TENANTRY_SHOW_OPERATOR_LOG"):
            print(log.read_text())
