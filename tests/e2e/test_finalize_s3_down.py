"""Deleting a Tenant while S3 is down: bounded retries with a clear condition, then done."""

from __future__ import annotations

import json

import kopf
import pytest
from tenantry_operator import finalize
from tenantry_operator.kube import Kube as OperatorKube
from tenantry_operator.s3 import S3Config

from tenantry_dev.services import free_port
from tests.e2e.test_tenant_lifecycle import condition
from tests.support.kube import Kube, tenant
from tests.support.operator import OperatorProcess


async def test_unreachable_s3_gives_up_after_bounded_retries(
    crds: Kube, operator_process: OperatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # finalize() is driven by the test here; the running operator must not race it.
    operator_process.stop()
    name = "lc-s3-down"
    crds.apply(
        tenant(
            name,
            {"reclaimPolicy": "Delete", "backup": {"bucket": "nowhere", "deleteWithTenant": True}},
        )
    )
    # A status as the operator leaves it: the failure must not drop these conditions.
    earlier = [
        {
            "type": t,
            "status": "True",
            "reason": "Ready",
            "message": "m",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        for t in ("Ready", "RedisReady")
    ]
    crds.run(
        "patch",
        "tenant",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": earlier}}),
    )
    body = crds.get("tenant", name)
    dead = S3Config(f"http://127.0.0.1:{free_port()}", "a", "b")
    monkeypatch.setenv("KUBECONFIG", str(crds.kubeconfig))
    kube = OperatorKube.from_env()
    try:
        with pytest.raises(kopf.TemporaryError):
            await finalize.finalize(kube, body=body, s3=dead, retry=0, max_retries=3)
        cond = condition(crds, name, "Degraded")
        assert cond["reason"] == "BackupCleanupFailed"
        assert "unreachable" in cond["message"]
        assert "retry 1 of 3" in cond["message"]
        now = crds.get("tenant", name)["status"]["conditions"]
        kept = [c for c in now if c["type"] != "Degraded"]
        assert kept == earlier, "the failure dropped or changed the other conditions"
        # The last attempt gives up: no exception, so the finalizer can be removed.
        [event] = await finalize.finalize(kube, body=body, s3=dead, retry=2, max_retries=3)
        assert event.reason == "BackupCleanupAbandoned"
        assert event.warning
        assert "nowhere" in event.message
    finally:
        await kube.close()
        operator_process.start()
        crds.try_run("delete", "tenant", name, "--wait=false")
