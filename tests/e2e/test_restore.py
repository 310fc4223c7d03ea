"""A ``Restore`` through the whole operator against the real API server: resource ->
Job -> status and Events.

kwok runs no containers, so the Job's work is not done here (``tenantry restore`` itself
is tested against the engine and S3 in tests/integration/operator/test_restore_job.py).
kwok's built-in stages do finish a Job's pod as a container that exited 0 would, and the
Job controller then marks the Job Complete: that is the path followed here, with the
Job the operator created checked for the command and settings the restore asked for.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.e2e.test_tenant_lifecycle import condition, wait_phase
from tests.support.kube import Kube
from tests.support.wait import eventually

BUCKET = "restore-e2e"


def _status(kube: Kube, name: str) -> dict[str, Any]:
    return dict((kube.get_or_none("restore", name) or {}).get("status") or {})


def _succeeded(kube: Kube, name: str) -> dict[str, Any]:
    for cond in _status(kube, name).get("conditions") or []:
        if cond["type"] == "Succeeded":
            return dict(cond)
    return {}


def _condition_reason(kube: Kube, name: str, reason: str, timeout: float) -> dict[str, Any]:
    """The Restore's Succeeded condition once its reason is ``reason``."""
    found: dict[str, Any] = eventually(
        lambda: _succeeded(kube, name),
        accept=lambda c: c.get("reason") == reason,
        timeout=timeout,
        what=f"{reason} on the Restore",
    )
    return found


def _reasons(kube: Kube, name: str) -> dict[str, str]:
    uid = kube.get("restore", name)["metadata"]["uid"]
    selector = f"involvedObject.kind=Restore,involvedObject.name={name},involvedObject.uid={uid}"
    return {
        e["reason"]: e["type"]
        for e in kube.get("events", "-A", "--field-selector", selector)["items"]
    }


def test_a_restore_of_a_missing_tenant_says_so_within_seconds(
    crds: Kube, make_tenant: Any, make_restore: Any
) -> None:
    missing = f"rs-none-{secrets.token_hex(2)}"
    name = make_restore("rs-missing", {"tenant": missing})
    cond = _condition_reason(crds, name, "TenantNotFound", timeout=20)
    assert cond["status"] == "Unknown"
    assert cond["message"] == f"tenant {missing} does not exist"
    assert _status(crds, name)["phase"] == "Pending"
    assert (
        eventually(
            lambda: _reasons(crds, name),
            accept=lambda r: "TenantNotFound" in r,
            timeout=20,
            what="TenantNotFound event",
        )["TenantNotFound"]
        == "Warning"
    )


def test_a_tenant_without_backup_settings_fails_the_restore(
    crds: Kube, make_tenant: Any, make_restore: Any
) -> None:
    target = make_tenant("rs-nobk", {})
    name = make_restore("rs-nobk", {"tenant": target})
    cond = _condition_reason(crds, name, "BackupNotConfigured", timeout=30)
    assert cond["status"] == "False"
    assert _status(crds, name)["phase"] == "Failed"
    assert not crds.get(
        "jobs", "-n", f"tenant-{target}", "-l", "app.kubernetes.io/component=restore"
    )["items"]


def test_a_restore_creates_its_job_and_reports_its_completion(
    crds: Kube, make_tenant: Any, make_restore: Any
) -> None:
    target = make_tenant("rs-into", {"backup": {"bucket": BUCKET, "retention": 3}})
    wait_phase(crds, target, "Ready")
    name = make_restore(
        "rs-ok",
        {
            "tenant": target,
            "source": {"tenant": "rs-old", "backup": "20261206T031500.123Z"},
            "overwrite": True,
        },
    )
    st = eventually(
        lambda: _status(crds, name),
        accept=lambda s: s.get("phase") == "Succeeded",
        timeout=120,
        what="the Restore Succeeded",
    )
    uid = crds.get("restore", name)["metadata"]["uid"]
    assert st["job"] == f"restore-{name}-{uid.replace('-', '')[:8]}"
    assert st["startedAt"] <= st["completedAt"]
    assert _succeeded(crds, name)["reason"] == "RestoreSucceeded"
    job = crds.get("job", st["job"], "-n", f"tenant-{target}")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "Tenant"
    assert job["spec"]["backoffLimit"] == 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["tenantry", "restore"]
    cron = crds.get("cronjob", "backup", "-n", f"tenant-{target}")
    (backup_container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == backup_container["image"]  # the operator's Tenantry image
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TENANTRY_RESTORE_SOURCE_TENANT"] == "rs-old"
    assert env["TENANTRY_RESTORE_BACKUP"] == "20261206T031500.123Z"
    assert env["TENANTRY_RESTORE_OVERWRITE"] == "true"
    assert env["TENANTRY_BACKUP_BUCKET"] == BUCKET
    reasons = eventually(
        lambda: _reasons(crds, name),
        accept=lambda r: {"RestoreStarted", "RestoreSucceeded"} <= set(r),
        timeout=20,
        what="RestoreStarted and RestoreSucceeded events",
    )
    assert reasons["RestoreSucceeded"] == "Normal"
    # immutable: a restore is one request
    edit = crds.try_run(
        "patch", "restore", name, "--type=merge", "-p", '{"spec":{"overwrite":false}}'
    )
    assert edit.code != 0
    assert "a Restore is immutable" in edit.stderr


def _restoring(kube: Kube, tenant: str, status: str, what: str) -> dict[str, Any]:
    """The Tenant's ``Restoring`` condition once its status is ``status``."""
    found: dict[str, Any] = eventually(
        lambda: condition(kube, tenant, "Restoring"),
        accept=lambda c: c.get("status") == status,
        timeout=60,
        what=what,
    )
    return found


def _ingestion_args(kube: Kube, ns: str) -> list[str]:
    dep = kube.get("deployment", "ingestion", "-n", ns)
    return list(dep["spec"]["template"]["spec"]["containers"][0]["args"])


def test_a_restore_holds_the_writers_until_it_ends(
    crds: Kube, make_tenant: Any, make_restore: Any
) -> None:
    """The Job runs while ingestion runs no writer, backups are suspended and the Tenant
    says Restoring; all of it is let go when the restore ends. (That the Job waits for
    every pod, an old one in its grace period included, is
    tests/unit/operator/test_restore_hold.py's: kwok ends such pods at once.)"""
    target = make_tenant("rs-hold", {"backup": {"bucket": BUCKET, "retention": 3}})
    ns = f"tenant-{target}"
    wait_phase(crds, target, "Ready")
    assert _ingestion_args(crds, ns) == ["ingest"]
    name = make_restore("rs-hold", {"tenant": target, "overwrite": True})
    restoring = _restoring(crds, target, "True", "the Tenant Restoring")
    assert restoring["reason"] == "RestoreRunning"
    assert name in restoring["message"]
    jobs = eventually(
        lambda: crds.get("jobs", "-n", ns, "-l", "app.kubernetes.io/component=restore")["items"],
        accept=bool,
        timeout=60,
        what="the restore Job",
    )
    # The worker looks at a running Job every few seconds: it cannot have let go yet.
    assert _ingestion_args(crds, ns) == ["ingest", "--no-writer"]
    assert crds.get("cronjob", "backup", "-n", ns)["spec"]["suspend"] is True
    tenant = crds.get("tenant", target)
    assert tenant["metadata"]["annotations"]["tenantry.io/restore-hold"] == name
    selector = crds.get("deployment", "ingestion", "-n", ns)["spec"]["selector"]["matchLabels"]
    found = crds.get("pods", "-n", ns, "-l", ",".join(f"{k}={v}" for k, v in selector.items()))
    for pod in found["items"]:  # every ingestion pod there is a held one
        assert pod["spec"]["containers"][0]["args"] == ["ingest", "--no-writer"]
    assert len(jobs) == 1

    st = eventually(
        lambda: _status(crds, name),
        accept=lambda s: s.get("phase") == "Succeeded",
        timeout=120,
        what="the Restore Succeeded",
    )
    assert st["job"] == jobs[0]["metadata"]["name"]
    released = _restoring(crds, target, "False", "the Tenant no longer Restoring")
    assert released["reason"] == "NoRestore"
    annotations = crds.get("tenant", target)["metadata"].get("annotations") or {}
    assert "tenantry.io/restore-hold" not in annotations
    eventually(
        lambda: _ingestion_args(crds, ns),
        accept=lambda a: a == ["ingest"],
        timeout=30,
        what="ingestion writing again",
    )
    assert crds.get("cronjob", "backup", "-n", ns)["spec"]["suspend"] is False


def test_a_hold_without_its_restore_is_dropped(crds: Kube, make_tenant: Any) -> None:
    """A hold whose Restore is gone (deleted before it ended, an operator killed between
    two steps) holds nothing: the tenant's reconcile drops it."""
    target = make_tenant("rs-drop", {"backup": {"bucket": BUCKET, "retention": 3}})
    ns = f"tenant-{target}"
    wait_phase(crds, target, "Ready")
    crds.run("annotate", "tenant", target, "tenantry.io/restore-hold=rs-gone")
    eventually(
        lambda: crds.get("tenant", target)["metadata"].get("annotations") or {},
        accept=lambda a: "tenantry.io/restore-hold" not in a,
        timeout=60,
        what="the stale hold removed",
    )
    uid = crds.get("tenant", target)["metadata"]["uid"]
    selector = f"involvedObject.kind=Tenant,involvedObject.uid={uid},reason=RestoreHoldReleased"
    found = eventually(
        lambda: crds.get("events", "-A", "--field-selector", selector)["items"],
        accept=bool,
        timeout=30,
        what="a RestoreHoldReleased event",
    )
    assert "restore rs-gone ended" in found[0]["message"]
    assert _ingestion_args(crds, ns) == ["ingest"]
    assert not condition(crds, target, "Restoring")  # never held: no condition
