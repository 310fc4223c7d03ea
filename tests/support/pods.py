"""Pods a test places in a tenant's namespace to stand for what a kubelet would leave
(a finished Job's pod, an old pod in its grace period). kwok runs no containers, so
these pods are never scheduled: their scheduler name is one no scheduler serves, so
kwok leaves their status to the test. They pass the namespace's restricted Pod Security
level and its quota."""

from __future__ import annotations

import json
from typing import Any

from tests.support.kube import Kube

NEVER_SCHEDULED = "tenantry-test-never-scheduled"


def create_unscheduled(
    kube: Kube,
    ns: str,
    name: str,
    *,
    labels: dict[str, str],
    container: str,
    args: list[str] | None = None,
    finalizers: list[str] | None = None,
) -> None:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "finalizers": finalizers or [],
        },
        "spec": {
            "schedulerName": NEVER_SCHEDULED,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": container,
                    "image": "tenantry:test",
                    "args": args or [],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "10m", "memory": "32Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    kube.run("create", "-f", "-", stdin=json.dumps(pod))


def patch_status(kube: Kube, kind: str, name: str, ns: str, patch: dict[str, Any]) -> None:
    args = ("-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(patch))
    kube.run("patch", kind, name, *args)
