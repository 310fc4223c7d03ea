"""What a Restore's status says at each point, decided by ``restore_worker.decide``."""

from __future__ import annotations

from typing import Any

from tenantry_operator import restore_worker
from tenantry_operator.restore_worker import decide

from tenantry.api.restore import RestorePhase, RestoreSpec

SPEC = RestoreSpec.model_validate({"tenant": "globex", "source": {"tenant": "acme"}})
READY = {
    "status": {
        "conditions": [{"type": "ClickHouseReady", "status": "True"}],
        "schema": {"hosts": ["ch-s0-r0"]},
    }
}


def _job(kind: str | None, message: str = "") -> dict[str, Any]:
    conds = [{"type": kind, "status": "True", "message": message}] if kind else []
    return {"status": {"conditions": conds}}


def _decide(**kwargs: Any) -> restore_worker.Decision:
    base: dict[str, Any] = {
        "name": "r1",
        "job_ref": "restore-r1-0a1b2c3d",
        "spec": SPEC,
        "tenant": READY,
        "has_backup": True,
        "job": None,
        "failure": None,
    }
    return decide(**{**base, **kwargs})


def test_a_missing_tenant_is_pending_with_a_warning_and_no_job() -> None:
    d = _decide(tenant=None)
    assert (d.phase, d.cond.ok, d.cond.reason) == (RestorePhase.PENDING, None, "TenantNotFound")
    assert d.cond.message == "tenant globex does not exist"
    assert (d.warning, d.create_job, d.done) == (True, False, False)


def test_a_tenant_without_backup_settings_fails_at_once() -> None:
    d = _decide(has_backup=False)
    assert (d.phase, d.cond.ok, d.cond.reason) == (
        RestorePhase.FAILED,
        False,
        "BackupNotConfigured",
    )
    assert (d.done, d.create_job) == (True, False)


def test_a_tenant_not_ready_is_waited_for() -> None:
    d = _decide(tenant={"status": {}})
    assert (d.phase, d.cond.reason, d.create_job) == (
        RestorePhase.PENDING,
        "WaitingForTenant",
        False,
    )


def test_a_ready_tenant_is_held_then_gets_the_job_then_its_result() -> None:
    ask = _decide()
    assert (ask.phase, ask.cond.reason, ask.hold, ask.create_job) == (
        RestorePhase.PENDING,
        "HoldingWriters",
        True,
        False,
    )
    waiting = _decide(hold="waiting")
    assert (waiting.cond.reason, waiting.hold, waiting.create_job) == (
        "HoldingWriters",
        False,
        False,
    )
    assert "run without a writer" in waiting.cond.message
    # Held: the readiness of the tenant no longer matters (its ingestion pods roll).
    held = _decide(hold="held", tenant={"status": {}})
    assert (held.phase, held.create_job, held.hold) == (RestorePhase.RUNNING, True, False)
    running = _decide(job=_job(None))
    assert (running.phase, running.create_job, running.done) == (RestorePhase.RUNNING, False, False)
    assert running.cond.message.endswith("Job restore-r1-0a1b2c3d runs")
    done = _decide(job=_job("Complete"))
    assert (done.phase, done.cond.ok, done.done) == (RestorePhase.SUCCEEDED, True, True)
    assert "of backup latest of tenant acme into globex" in done.cond.message


def test_a_failed_job_reports_the_jobs_own_line() -> None:
    line = "restore failed: no backup 20200101T000000.000Z of tenant acme in bucket b"
    d = _decide(job=_job("Failed", "Job has reached the specified backoff limit"), failure=line)
    assert (d.phase, d.cond.ok, d.cond.reason, d.cond.message) == (
        RestorePhase.FAILED,
        False,
        "RestoreFailed",
        line,
    )
    assert (d.warning, d.done) == (True, True)
    without = _decide(job=_job("Failed", "Job has reached the specified backoff limit"))
    assert without.cond.message == "Job has reached the specified backoff limit"


def test_job_names_fit_a_label_value_and_differ_per_restore_object() -> None:
    uid = "0a1b2c3d-1111-2222-3333-444455556666"
    assert restore_worker.job_name("r1", uid) == "restore-r1-0a1b2c3d"
    assert len(restore_worker.job_name("x" * 253, uid)) <= 63
    again = restore_worker.job_name("r1", "ffff0000-1111-2222-3333-444455556666")
    assert again != restore_worker.job_name("r1", uid)


def test_a_target_whose_spec_is_refused_is_pending_with_the_reason() -> None:
    d = _decide(refused="tenant globex has a spec the operator refuses: x")
    assert (d.phase, d.cond.reason, d.warning, d.create_job) == (
        RestorePhase.PENDING,
        "TenantInvalid",
        True,
        False,
    )


def test_the_hold_is_asked_only_of_a_ready_tenant() -> None:
    d = _decide(tenant={"status": {}})
    assert (d.cond.reason, d.hold) == ("WaitingForTenant", False)


def test_a_completed_job_says_the_rows_it_put_in_place_when_known() -> None:
    d = _decide(job=_job("Complete"), restored=1234)
    assert d.phase == RestorePhase.SUCCEEDED
    assert d.cond.message.endswith("completed: 1234 rows in place")
    unknown = _decide(job=_job("Complete"))
    assert unknown.cond.message.endswith(" completed")
