"""The real-node cluster, once per session: the local control plane with one real node
(containerd, kubelet, kube-proxy, CoreDNS in the network namespace ``tenantry-node``;
tenantry_dev/realnode.py), started in a temporary folder on free ports and destroyed at
the end. The toolbox test image is imported through the CLI (``cluster load-image``).

Every time the cluster starts a process, the fixture records what ``ip route get``
says from the host for a pod and a Service address, so a test can check that the
blackhole routes were in place before anything ran.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

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


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    kubectl = tools.ensure(("kubectl",))["kubectl"]
    seen: list[tuple[str, dict[str, dict[str, object]]]] = []

    def log(line: str) -> None:
        print(line)
        if line.startswith("started "):
            seen.append((line, {a: realnode.route_via(a) for a in (POD_ADDRESS, SERVICE_ADDRESS)}))

    netns_before = frozenset(netns_names())
    state = tmp_path_factory.mktemp("realnode")
    cluster = LocalCluster(state, ports=Ports.free(), node_kind="real", log=log)
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
        yield RealCluster(cluster, kube, seen, netns_before)
    finally:
        cluster.destroy()


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def toolbox_pod(name: str, namespace: str, command: str, **extra: object) -> dict[str, object]:
    """A pod of the locally imported toolbox image, with the restricted securityContext."""
    container: dict[str, object] = {
        "name": "main",
        "image": "local/toolbox:tenantry",
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", command],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}},
        **extra,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
        },
    }


def wait_ready(kube: Kube, namespace: str, *pods: str) -> None:
    """All ``pods`` Ready; on timeout the failure shows what the pods went through."""
    wait = ("wait", "--for=condition=Ready", f"--timeout={scaled(120):.0f}s")
    res = kube.try_run("-n", namespace, *wait, *(f"pod/{p}" for p in pods))
    if res.code != 0:
        described = kube.try_run("-n", namespace, "describe", "pod", *pods).stdout
        raise AssertionError(f"pods {pods} not Ready: {res.stderr}\n{described[-3000:]}")
