"""A Restore's reconcile (called by the kopf handlers in handlers.py): create the restore
Job in the target tenant's namespace (``builders.restore``), then follow it to its end
and report it in the Restore's status and Events.

- The target Tenant does not exist: ``Pending``, condition ``Succeeded=Unknown/
  TenantNotFound`` and a Warning event, looked at again every few seconds (the Tenant may
  be applied together with the Restore).
- The target is not Ready with its schema yet: ``Pending/WaitingForTenant``.
- The target's spec is one the operator refuses: ``Pending/TenantInvalid``.
- The target has no ``spec.backup`` (no bucket to restore from): ``Failed/
  BackupNotConfigured`` at once.
- Then the target's writers are held (``restore_hold``): the Tenant is annotated and the
  Restore stays ``Pending/HoldingWriters`` until no ingestion pod runs a writer.
- Then the Job is created once (its name derives from the Restore's): ``Running``,
  then ``Succeeded`` or ``Failed`` from the Job's conditions, the failure's message
  taken from the pod's termination message (the job's one ``restore failed: ...`` line,
  redacted again by the operator, ``job_output``) when there is one. On either end the
  hold is removed and the target's worker woken.

What is decided from what is pure (``decide``); this module only reads and writes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import kopf
from pydantic import ValidationError

from tenantry.api import GROUP, VERSION
from tenantry.api.restore import RestorePhase, RestoreSpec
from tenantry_operator import job_output, normalize, restore_hold, restore_progress
from tenantry_operator.builders import ingestion
from tenantry_operator.builders import restore as restore_builder
from tenantry_operator.conditions import Cond, set_conditions
from tenantry_operator.dataplane import dashboards
from tenantry_operator.model import TenantModel
from tenantry_operator.runtime import Runtime
from tenantry_operator.worker import invalid_spec

SUCCEEDED = "Succeeded"
log = logging.getLogger(__name__)
POLL_SECONDS = 5.0  # how soon to look again at a Job or a target that is not there yet


def job_name(restore: str, uid: str) -> str:
    """The restore Job's name in the tenant's namespace (at most 63 characters). The
    Restore's uid is part of it: a Restore deleted and created again under the same name
    gets a Job of its own, never the finished Job of the earlier one."""
    return f"restore-{restore[:45].rstrip('-')}-{uid.replace('-', '')[:8]}"


# Where the target's writers are: not asked to stop; asked, some pod still writes; held.
Hold = Literal["none", "waiting", "held"]
HOLDING = "HoldingWriters"


@dataclass(frozen=True)
class Decision:
    phase: RestorePhase
    cond: Cond
    warning: bool = False
    create_job: bool = False
    done: bool = False
    hold: bool = False  # put the hold on the target (restore_hold)


def _job_condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def decide(
    *,
    name: str,
    job_ref: str,
    spec: RestoreSpec,
    tenant: Mapping[str, Any] | None,
    has_backup: bool,
    job: Mapping[str, Any] | None,
    failure: str | None,
    refused: str | None = None,
    hold: Hold = "none",
    restored: int | None = None,
) -> Decision:
    """What the Restore's status says and does next (pure). ``failure`` is the failed
    pod's termination message, if any; ``job_ref`` the Job's name; ``refused`` why the
    target's spec cannot be used, if it cannot; ``hold`` where the target's writers are
    (the Job is created only once they are held); ``restored`` the rows the Job
    reported in place, when it did."""
    target = spec.tenant
    if job is not None:
        if _job_condition(job, "Complete") is not None:
            rows = "" if restored is None else f": {restored} rows in place"
            return Decision(
                RestorePhase.SUCCEEDED,
                Cond(SUCCEEDED, True, "RestoreSucceeded", f"{_what(spec, name)} completed{rows}"),
                done=True,
            )
        failed = _job_condition(job, "Failed")
        if failed is not None:
            message = failure or str(failed.get("message") or failed.get("reason") or "")
            return Decision(
                RestorePhase.FAILED,
                Cond(SUCCEEDED, False, "RestoreFailed", message.strip()[:2000]),
                warning=True,
                done=True,
            )
        return Decision(
            RestorePhase.RUNNING,
            Cond(SUCCEEDED, None, "Running", f"{_what(spec, name)}: Job {job_ref} runs"),
        )
    if tenant is None:
        return Decision(
            RestorePhase.PENDING,
            Cond(SUCCEEDED, None, "TenantNotFound", f"tenant {target} does not exist"),
            warning=True,
        )
    if refused is not None:
        return Decision(
            RestorePhase.PENDING, Cond(SUCCEEDED, None, "TenantInvalid", refused), warning=True
        )
    if not has_backup:
        return Decision(
            RestorePhase.FAILED,
            Cond(
                SUCCEEDED,
                False,
                "BackupNotConfigured",
                f"tenant {target} has no spec.backup: the restore reads its bucket",
            ),
            warning=True,
            done=True,
        )
    if hold == "none":
        if not dashboards.tenant_ready(tenant.get("status")):
            return Decision(
                RestorePhase.PENDING,
                Cond(
                    SUCCEEDED,
                    None,
                    "WaitingForTenant",
                    f"waiting for tenant {target}'s ClickHouse to be Ready with its schema",
                ),
            )
        return Decision(
            RestorePhase.PENDING,
            Cond(SUCCEEDED, None, HOLDING, f"pausing tenant {target}'s ingestion writers"),
            hold=True,
        )
    if hold == "waiting":
        return Decision(
            RestorePhase.PENDING,
            Cond(
                SUCCEEDED,
                None,
                HOLDING,
                f"waiting for every ingestion pod of tenant {target} to run without a "
                "writer (events are accepted into Redis meanwhile)",
            ),
        )
    return Decision(
        RestorePhase.RUNNING,
        Cond(SUCCEEDED, None, "Running", f"{_what(spec, name)}: Job {job_ref} created"),
        create_job=True,
    )


def _what(spec: RestoreSpec, name: str) -> str:
    source = spec.source.tenant or spec.tenant
    return f"restore {name} of backup {spec.source.backup} of tenant {source} into {spec.tenant}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _writers_held(rt: Runtime, model: TenantModel) -> bool:
    pods = await rt.kube.list(
        "v1", "Pod", namespace=model.namespace, labels=model.labels(ingestion.COMPONENT)
    )
    writing = [p["metadata"]["name"] for p in pods if not restore_hold.writers_held([p])]
    if writing:
        log.info("restore into %s waits for ingestion pods still writing: %s", model.name, writing)
    return not writing


async def reconcile(rt: Runtime, body: kopf.Body, patch: kopf.Patch) -> float | None:
    """One look at a Restore; the delay before looking again, or None when it is done."""
    name, status = body.meta["name"], dict(body.status)
    job_ref = job_name(name, str(body.meta.get("uid") or ""))
    if status.get("phase") in (RestorePhase.SUCCEEDED, RestorePhase.FAILED):
        return None
    spec = RestoreSpec.model_validate(dict(body.spec))
    kube = rt.kube
    tenant = await kube.get(f"{GROUP}/{VERSION}", "Tenant", spec.tenant)
    model = None
    refused = None
    if tenant is not None:
        try:  # the images the operator runs, as for every other child of the tenant
            model = normalize.tenant_model(tenant, images=rt.settings.images)
        except ValidationError as err:
            refused = f"tenant {spec.tenant} has a spec the operator refuses: {invalid_spec(err)}"
    job = None
    failure = None
    hold: Hold = "none"
    progress = restore_progress.Progress()
    if model is not None:
        job = await kube.get("batch/v1", "Job", job_ref, namespace=model.namespace)
        if job is not None:  # its pods listed once: for the progress and the failure
            pods = await job_output.job_pods(kube, model.namespace, job_ref)
            progress = restore_progress.parse(
                await job_output.log_lines(
                    kube, model.namespace, pods, tail_lines=restore_progress.TAIL_LINES
                )
            )
            if _job_condition(job, "Failed") is not None:
                failure = await job_output.safe_line(
                    rt.kube, model, rt.settings.s3, job=job_ref, pods=pods
                )
        if restore_hold.holder(tenant) == name and job is None:
            hold = "held" if await _writers_held(rt, model) else "waiting"
    decision = decide(
        name=name,
        job_ref=job_ref,
        spec=spec,
        tenant=tenant,
        has_backup=model is not None and model.backup is not None,
        job=job,
        failure=failure,
        refused=refused,
        hold=hold,
        restored=progress.restored(),
    )
    new: dict[str, Any] = {"phase": str(decision.phase), **progress.status()}
    for step in restore_progress.new_steps(status.get("shards") or [], progress):
        kopf.info(body, reason=f"Shard{step.phase}", message=restore_progress.told(step))
    if decision.hold or (decision.done and restore_hold.holder(tenant) == name):
        # Hold the target's writers now, or let them go: the tenant's worker re-renders
        # its ingestion pods and backup CronJob.
        value = name if decision.hold else None
        await kube.patch(
            f"{GROUP}/{VERSION}", "Tenant", spec.tenant, restore_hold.annotation_patch(value)
        )
        rt.wake(spec.tenant)
    if decision.create_job and model is not None:
        manifest = restore_builder.job(
            model,
            name=job_ref,
            source_tenant=spec.source.tenant or "",
            backup_name=spec.source.backup,
            overwrite=spec.overwrite,
        )
        await kube.create(manifest)
        new.update({"job": job_ref, "startedAt": _now()})
        kopf.info(body, reason="RestoreStarted", message=decision.cond.message)
    if decision.done:
        new["completedAt"] = _now()
    new["message"] = decision.cond.message
    new["conditions"] = set_conditions(
        status.get("conditions"), [decision.cond], generation=body.meta.get("generation")
    )
    patch.status.update(new)
    if status.get("message") != decision.cond.message and not decision.create_job:
        event = kopf.warn if decision.warning else kopf.info
        reason = decision.cond.reason if decision.cond.reason != "Running" else "RestoreRunning"
        event(body, reason=reason, message=decision.cond.message)
    return None if decision.done else POLL_SECONDS
