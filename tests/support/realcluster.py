"""The real-node cluster, once per session for every suite that needs one (tests/realnode,
tests/incluster: the node's network namespace has one name, so two cannot run at once):
the local control plane with one real node (containerd, kubelet, kube-proxy, CoreDNS in
the network namespace ``tenantry-node``; tenantry_dev/realnode.py), started in a
temporary folder on free ports and destroyed at the end (the ``real`` fixture of
tests/conftest.py). The toolbox test image is imported through the CLI
(``cluster load-image``).

Every time the cluster starts a process, the fixture records what ``ip route get``
says from the host for a pod and a Service address, so a test can check that the
blackhole routes were in place before anything ran.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tenantry_dev import realnode, tools
from tenantry_dev.cluster import LocalCluster, Ports
from tests.support.kube import Kube
from tests.support.wait import scaled

POD_ADDRESS = "10.244.0.77"
SERVICE_ADDRESS = "10.96.0.77"


@dataclass
class RealCluster:
    cluster: LocalCluster
    kube: Kube
    # (what was started, {address: `ip route get` result}) at each start.
    routes_at_start: list[tuple[str, dict[str, dict[str, object]]]] = field(default_factory=list)
    # The host's network namespaces before the cluster started.
    netns_before: frozenset[str] = frozenset()
    # The kernel settings the kubelet changes, as they were before the cluster started.
    sysctls_before: dict[str, str] = field(default_factory=dict)
    # The machine-wide paths the node uses (realnode.GLOBAL_PATHS) that did not exist.
    absent_before: frozenset[str] = frozenset()


@contextmanager
def real_cluster(state: Path) -> Iterator[RealCluster]:
    """The cluster up in ``state``, destroyed on exit."""
    kubectl = tools.ensure(("kubectl",))["kubectl"]
    seen: list[tuple[str, dict[str, dict[str, object]]]] = []

    def log(line: str) -> None:
        print(line)
        if line.startswith("started "):
            seen.append((line, {a: realnode.route_via(a) for a in (POD_ADDRESS, SERVICE_ADDRESS)}))

    netns_before = frozenset(netns_names())
    sysctls_before = host_sysctls()
    absent_before = frozenset(p for p in realnode.GLOBAL_PATHS if not Path(p).exists())
    cluster = LocalCluster(state, ports=Ports.free(), node_kind="real", log=log, tied=True)
    try:
        took = cluster.up(timeout=scaled(180))
        print(f"\nreal-node cluster up in {took:.1f} s")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tenantry_dev",
                "cluster",
                "load-image",
                str(tools.node_images() / "toolbox.tar"),
                "--state-dir",
                str(state),
            ],
            check=True,
            timeout=scaled(120),
        )
        kube = Kube(kubeconfig=cluster.kubeconfig, kubectl=kubectl)
        yield RealCluster(cluster, kube, seen, netns_before, sysctls_before, absent_before)
    finally:
        cluster.destroy()


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def host_sysctls() -> dict[str, str]:
    """The kernel settings the kubelet would change (realnode.KUBELET_SYSCTLS), read now."""
    return {
        k: Path("/proc/sys", k.replace(".", "/")).read_text().strip()
        for k in realnode.KUBELET_SYSCTLS
    }
