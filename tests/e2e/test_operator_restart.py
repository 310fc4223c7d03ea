"""An operator killed mid-reconcile converges after restart, with nothing duplicated."""

from __future__ import annotations

from typing import Any

from tests.e2e.test_tenant_lifecycle import wait_phase
from tests.support.kube import Kube, tenant
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually


def test_killed_mid_reconcile_converges_without_duplicates(
    crds: Kube, operator_process: OperatorProcess
) -> None:
    name, ns = "lc-restart", "tenant-lc-restart"
    crds.apply(tenant(name, {"plan": "growth", "clickhouse": {"shards": 3}}))
    try:
        # Kill it as soon as the stack is half-built.
        eventually(
            lambda: crds.get_or_none("secret", "clickhouse-credentials", "-n", ns),
            timeout=120,
            interval=0.05,
            what="reconcile under way",
        )
        operator_process.kill()
        secret = crds.get("secret", "clickhouse-credentials", "-n", ns)
        operator_process.start()
        st = wait_phase(crds, name, "Ready", timeout=240)
        assert st["hosts"] == "6/6"
        after = crds.get("secret", "clickhouse-credentials", "-n", ns)
        assert after["metadata"]["uid"] == secret["metadata"]["uid"]
        assert after["data"] == secret["data"], "credentials were regenerated"
        sts = crds.get("statefulsets", "-n", ns)["items"]
        assert sorted(s["metadata"]["name"] for s in sts) == sorted(
            [f"ch-s{s}-r{r}" for s in range(3) for r in range(2)] + ["keeper", "redis"]
        )
        for obj in (
            sts + crds.get("configmaps,services", "-n", ns, "-l", "tenantry.io/tenant")["items"]
        ):
            refs: list[dict[str, Any]] = obj["metadata"].get("ownerReferences", [])
            assert len(refs) == 1, obj["metadata"]["name"]
        pvcs = crds.get("pvc", "-n", ns)["items"]
        assert len(pvcs) == 6 + 3 + 1  # hosts, keeper, redis: one volume each
    finally:
        operator_process.stop()
        operator_process.start()
        crds.try_run("delete", "tenant", name, "--wait=false")
