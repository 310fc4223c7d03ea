"""The operator starts against the real API server, serves liveness and handles both kinds."""

from __future__ import annotations

import json
import urllib.request
from functools import partial
from typing import Any

from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually, scaled


def test_liveness_endpoint_answers(operator_process: OperatorProcess) -> None:
    url = operator_process.url
    with urllib.request.urlopen(url, timeout=scaled(30)) as resp:  # noqa: S310 - loopback
        assert resp.status == 200
        json.loads(resp.read() or b"{}")


def _observed(kube: Kube, kind: str, name: str) -> Any:
    obj = kube.get(kind, name)
    status = obj.get("status") or {}
    if status.get("observedGeneration") == obj["metadata"]["generation"]:
        return status
    return None


def test_tenant_and_dashboard_are_handled(crds: Kube, operator_process: OperatorProcess) -> None:
    crds.apply(
        {
            "apiVersion": "tenantry.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "e2e-skeleton"},
            "spec": {"plan": "starter"},
        }
    )
    crds.apply(
        {
            "apiVersion": "tenantry.io/v1alpha1",
            "kind": "Dashboard",
            "metadata": {"name": "e2e-skeleton"},
            "spec": {
                "tenantRef": {"name": "e2e-skeleton"},
                "title": "t",
                "panels": [{"id": "a", "title": "A", "sql": "SELECT 1"}],
            },
        }
    )
    try:
        for kind in ("tenant", "dashboard"):
            status = eventually(
                partial(_observed, crds, kind, "e2e-skeleton"),
                timeout=120,
                what=f"{kind} observed by the operator",
            )
            ready = [c for c in status["conditions"] if c["type"] == "Ready"]
            assert ready
            assert ready[0]["observedGeneration"] == status["observedGeneration"]
        # A spec change bumps the generation; the operator observes the new one.
        crds.run(
            "patch", "tenant", "e2e-skeleton", "--type=merge", "-p", '{"spec":{"plan":"growth"}}'
        )
        status = eventually(
            lambda: _observed(crds, "tenant", "e2e-skeleton"),
            timeout=120,
            what="new generation observed",
        )
        assert status["observedGeneration"] == 2
    finally:
        crds.try_run("delete", "dashboard", "e2e-skeleton", "--wait=false")
        crds.try_run("delete", "tenant", "e2e-skeleton", "--wait=false")
