"""The local control plane is a real Kubernetes: nodes Ready, controllers schedule pods."""

from __future__ import annotations

from tenantry_dev.cluster import KWOK_NODE_IP
from tests.support.kube import Kube
from tests.support.wait import eventually


def test_readyz_and_kwok_nodes_ready(kube: Kube) -> None:
    assert kube.run("get", "--raw", "/readyz").strip() == "ok"
    nodes = kube.get("nodes")["items"]
    ready = [
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    assert len(ready) >= 3, ready


def test_statefulset_pods_become_ready(kube: Kube) -> None:
    ns = "e2e-sts"
    kube.run("create", "namespace", ns)
    try:
        kube.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "web", "namespace": ns},
                "spec": {
                    "replicas": 3,
                    "serviceName": "web",
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
                    },
                },
            }
        )

        eventually(
            lambda: kube.get("statefulset", "web", "-n", ns).get("status", {}),
            accept=lambda status: status.get("readyReplicas") == 3,
            timeout=180,
            what="3 ready replicas",
        )
        pods = kube.get("pods", "-n", ns, "-l", "app=web")["items"]
        assert sorted(p["metadata"]["name"] for p in pods) == ["web-0", "web-1", "web-2"]
        assert all(p["status"]["phase"] == "Running" for p in pods)
        assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)
    finally:
        kube.run("delete", "namespace", ns, "--wait=false")


def test_a_fake_node_s_pod_log_request_stays_on_this_machine(kube: Kube) -> None:
    """The API server serves a pod's log by dialling its node: for kwok's fake nodes that
    must be loopback, never an address behind the default gateway nor a hostname
    resolved through the host's DNS (the operator reads restore Jobs' logs)."""
    nodes = kube.get("nodes")["items"]
    fake = [n for n in nodes if n["metadata"]["name"].startswith("kwok-node-")]
    assert fake
    for node in fake:
        addresses = {a["type"]: a["address"] for a in node["status"].get("addresses", [])}
        assert addresses.get("InternalIP") == KWOK_NODE_IP, addresses
    ns = "e2e-logs"
    kube.run("create", "namespace", ns)
    try:
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "talker", "namespace": ns},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
            }
        )
        eventually(
            lambda: kube.get("pod", "talker", "-n", ns).get("status", {}).get("phase"),
            accept=lambda phase: phase == "Running",
            timeout=60,
            what="the pod Running on a fake node",
        )
        result = kube.try_run("logs", "talker", "-n", ns, timeout=60)
        said = result.stdout + result.stderr
        assert "10.0." not in said, said
        if result.code != 0:  # kwok serves no logs here: the dial must have been loopback
            assert KWOK_NODE_IP in said, said
    finally:
        kube.run("delete", "namespace", ns, "--wait=false")
