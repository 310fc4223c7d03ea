"""Helpers of the real-node tests; the cluster itself is the session fixture ``real``
(tests/conftest.py, tests/support/realcluster.py), shared with tests/incluster."""

from __future__ import annotations

from tests.support.kube import Kube
from tests.support.wait import scaled


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
