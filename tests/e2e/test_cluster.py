"""The local control plane is a real Kubernetes: nodes Ready, controllers schedule pods."""

from __future__ import annotations

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
