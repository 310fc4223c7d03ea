"""One reconcile of one Tenant: normalize -> build -> apply -> observe.

Called by the tenant's worker (worker.py) whenever the Tenant or one of its children
changes, and periodically. Safe to run again at any point: every step is idempotent, so
an operator killed mid-reconcile converges on restart without duplicates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tenantry import contract
from tenantry.api import GROUP, VERSION
from tenantry.clickhouse import layout
from tenantry.clickhouse.client import ClickHouseError
from tenantry_operator import (
    apply,
    backups,
    builders,
    checks,
    failures,
    job_output,
    normalize,
    observe,
    restore_hold,
    rollout,
    secrets,
)
from tenantry_operator.cache import LiveState, pod_summary
from tenantry_operator.conditions import Cond, set_conditions
from tenantry_operator.dataplane import connect, schema_step
from tenantry_operator.kube import Kube
from tenantry_operator.model import LABEL_COMPONENT, TenantModel
from tenantry_operator.s3 import Buckets, S3Error
from tenantry_operator.settings import Settings

Obj = dict[str, Any]
log = logging.getLogger(__name__)
API_VERSION = f"{GROUP}/{VERSION}"
HOST_LABEL = rollout.SHARD_LABEL  # host StatefulSets carry their shard


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclass
class Outcome:
    status: Obj
    converged: bool
    events: list[Event]
    # Waiting on something no watch announces (the tenant's ClickHouse answering): the
    # worker retries with a short backoff instead of its busy recheck (worker.py).
    retry: bool = False
    recheck_in: float | None = None  # look again this soon, whatever else happens


SchemaStep = Literal["done", "wait", "retry"]


def _hosts(objs: dict[tuple[str, str, str], Obj]) -> dict[str, Obj]:
    return {
        k[2]: o
        for k, o in objs.items()
        if k[0] == "StatefulSet" and HOST_LABEL in (o["metadata"].get("labels") or {})
    }


def _guard_scale_in(
    model: TenantModel, live_hosts: dict[str, Obj]
) -> tuple[TenantModel, Cond | None]:
    """Refuse to remove hosts (and their data) unless the spec allows it."""
    shards = replicas = 0
    for sts in live_hosts.values():
        labels = sts["metadata"]["labels"]
        shards = max(shards, int(labels[HOST_LABEL]) + 1)
        replicas = max(replicas, int(labels.get("tenantry.io/replica", "0")) + 1)
    ch = model.clickhouse
    if ch.allow_scale_in or (shards <= ch.shards and replicas <= ch.replicas):
        return model, None
    kept = dataclasses.replace(
        ch, shards=max(shards, ch.shards), replicas=max(replicas, ch.replicas)
    )
    cond = Cond(
        "Degraded",
        True,
        "ScaleInRefused",
        f"spec asks for {ch.shards} shard(s) x {ch.replicas} replica(s) but "
        f"{shards} x {replicas} exist; removing hosts drops their data: set "
        "spec.clickhouse.scaleInPolicy: AllowDataLoss to allow it",
    )
    return dataclasses.replace(model, clickhouse=kept), cond


@dataclass(frozen=True)
class Plan:
    """What one reconcile will do, decided from the model and what exists (``plan``)."""

    model: TenantModel  # as built: hosts the spec would remove are kept unless allowed
    desired: list[Obj]
    refusal: checks.Refusal | None  # nothing is applied when set
    problems: tuple[Cond, ...]  # Degraded causes known before anything is applied
    rollout: rollout.RolloutPlan
    namespace: apply.Actions
    namespace_live: dict[apply.Key, Obj]
    children: apply.Actions


def plan(model: TenantModel, state: LiveState, *, max_shards_in_flight: int) -> Plan:
    """Decide one reconcile (pure): the scale-in guard, the desired objects, the
    operator's own checks, the rolling update's turn, and the apply/prune actions for
    the namespace and for the children."""
    live = state.children
    model, scale_in = _guard_scale_in(model, _hosts(live))
    desired = builders.build(model)
    refusal = check_before_apply(model, desired, live)
    desired_hosts = [
        o
        for o in desired
        if o["kind"] == "StatefulSet" and HOST_LABEL in o["metadata"].get("labels", {})
    ]
    turn = rollout.plan(
        desired_hosts, list(_hosts(live).values()), max_shards_in_flight=max_shards_in_flight
    )
    # A held-back host keeps its StatefulSet and its own config until its turn.
    keep = {("StatefulSet", model.namespace, n) for n in turn.hold}
    keep |= {("ConfigMap", model.namespace, f"{n}-config") for n in turn.hold}
    namespaces = [o for o in desired if o["kind"] == "Namespace"]
    namespace_live: dict[apply.Key, Obj] = (
        {("Namespace", "", model.namespace): state.namespace} if state.namespace else {}
    )
    children = [
        o
        for o in desired
        if o["kind"] != "Namespace"
        and (o["kind"], model.namespace, o["metadata"]["name"]) not in keep
    ]
    return Plan(
        model=model,
        desired=desired,
        refusal=refusal,
        problems=(scale_in,) if scale_in else (),
        rollout=turn,
        namespace=apply.plan(desired=namespaces, live=namespace_live, keep=set(), prune=False),
        namespace_live=namespace_live,
        children=apply.plan(desired=children, live=live, keep=keep),
    )


async def list_state(kube: Kube, *, namespace: str, labels: dict[str, str]) -> LiveState:
    """What exists of a tenant, listed from the API server."""
    live_ns = await kube.get("v1", "Namespace", namespace)
    if live_ns is None:  # a new tenant has nothing to list yet
        return LiveState()
    pod_labels = {**labels, LABEL_COMPONENT: builders.clickhouse.COMPONENT}
    live, secret_list, pod_list = await asyncio.gather(
        apply.live_children(kube, namespace=namespace, labels=labels),
        kube.list("v1", "Secret", namespace=namespace, labels=labels),
        kube.list("v1", "Pod", namespace=namespace, labels=pod_labels),
    )
    pods = {p["metadata"]["name"]: pod_summary(p) for p in pod_list}
    return LiveState(live_ns, live, {s["metadata"]["name"] for s in secret_list}, pods)


async def reconcile(
    kube: Kube,
    body: Obj,
    settings: Settings,
    previous: Obj | None = None,
    state: LiveState | None = None,
    observed: Callable[[], LiveState] | None = None,
    record: apply.Recorder | None = None,
    failed: Mapping[failures.Key, failures.Record] | None = None,
) -> Outcome:
    """Converge one tenant.

    ``previous``: the status last written (if newer than body's); ``state``: what exists
    (from the watch cache), listed from the API when None; ``observed``: how to read the
    workloads afterwards (the cache again), listed when None; ``failed``: the warnings
    Kubernetes recorded about the tenant's pods and volumes (``failures.Failures``)."""
    model = normalize.tenant_model(
        body,
        images=settings.images,
        platform_namespaces=settings.platform_namespaces,
        monitoring_namespaces=settings.monitoring_namespaces,
        controlplane_url=settings.controlplane_url,
    )
    events: list[Event] = []
    model = await _restore_hold(kube, model, events)
    labels = {contract.LABEL_TENANT: model.name}
    if state is None:
        state = await list_state(kube, namespace=model.namespace, labels=labels)
    live_ns, live, existing = state.namespace, state.children, state.secrets
    if previous is None:
        previous = comparable(body.get("status"))
    decided = plan(model, state, max_shards_in_flight=settings.max_shards_in_flight)
    model = decided.model
    if decided.refusal is not None:
        return await _refuse(kube, model, previous, decided.refusal, events)

    # The namespace first: everything else lives in it.
    ns_result = await apply.execute(kube, decided.namespace, live=decided.namespace_live)
    if ns_result.applied and live_ns is None:
        events.append(Event("NamespaceCreated", f"created namespace {model.namespace}"))

    for name in await secrets.ensure(kube, model, existing):
        events.append(Event("SecretGenerated", f"generated Secret {name}"))
    if settings.internal_token and await secrets.ensure_ingestion(
        kube, model, settings.internal_token, existing
    ):
        events.append(Event("SecretGenerated", "created Secret ingestion-credentials"))
    problems = list(decided.problems)
    backup_problem = await _ensure_backup_target(kube, model, settings, existing, events)
    if backup_problem:
        problems.append(backup_problem)

    rollout_plan = decided.rollout
    result = await apply.execute(kube, decided.children, live=live, record=record)
    created = [
        n
        for n in result.applied
        if (n.split("/", 1)[0], model.namespace, n.split("/", 1)[1]) not in live
    ]
    if created:
        events.append(Event("Created", f"created {len(created)} objects: " + ", ".join(created)))
    updated = [n for n in result.applied if n not in created]
    rolling = {f"StatefulSet/{n}" for n in rollout_plan.started}
    if [n for n in updated if n not in rolling]:
        events.append(
            Event("Updated", "updated " + ", ".join(n for n in updated if n not in rolling))
        )
    for name in sorted(rollout_plan.started):
        events.append(Event("RollingUpdate", f"updating ClickHouse host {name}"))
    for name in result.pruned:
        events.append(Event("Pruned", f"deleted {name}, no longer desired"))

    # Observe workloads as they are now.
    now_live = live
    if observed is not None:
        now_live = observed().children
        sts_list = [o for k, o in now_live.items() if k[0] == "StatefulSet"]
        dep_list = [o for k, o in now_live.items() if k[0] == "Deployment"]
    elif result.changed or not live:
        sts_list, dep_list = await asyncio.gather(
            kube.list("apps/v1", "StatefulSet", namespace=model.namespace, labels=labels),
            kube.list("apps/v1", "Deployment", namespace=model.namespace, labels=labels),
        )
    else:
        sts_list = [o for k, o in live.items() if k[0] == "StatefulSet"]
        dep_list = [o for k, o in live.items() if k[0] == "Deployment"]
    sts = {o["metadata"]["name"]: o for o in sts_list}
    deps = {o["metadata"]["name"]: o for o in dep_list}
    cronjobs = {k[2]: o for k, o in now_live.items() if k[0] == "CronJob"}
    found = failures.problems(
        failed or {},
        statefulsets=sts,
        deployments=deps,
        cronjobs=cronjobs,
        ready=rollout.sts_ready,
        deployment_ready=observe.deployment_ready,
        now=time.time(),
    )
    found_problems = await job_output.explain_backup_failures(
        kube,
        model,
        settings.s3,
        found.problems,
        last_error=((previous or {}).get("backup") or {}).get("lastError"),
    )
    for problem in found_problems:
        problems.append(Cond("Degraded", True, problem.reason, problem.message))
    obs = observe.Observation(
        model=model,
        statefulsets=sts,
        deployments=deps,
        rollout=rollout_plan,
        problems=tuple(problems),
    )
    new_status = observe.status(obs, previous)
    await _backup_status(model, settings, new_status, previous, cronjobs, found_problems, events)
    restoring = restore_hold.condition(
        model.restore_hold, before=(previous or {}).get("conditions") or []
    )
    if restoring is not None:
        new_status["conditions"] = set_conditions(
            new_status["conditions"],
            [restoring],
            generation=model.generation,
            since=(previous or {}).get("conditions") or [],
        )
    schema = await _schema(
        kube,
        model,
        new_status,
        previous,
        events,
        settings,
        pods=(observed().pods if observed is not None else state.pods),
        record=record,
    )
    converged = (
        new_status["phase"] in ("Ready", "Suspended") and not result.changed and schema == "done"
    )
    outcome = Outcome(
        status=new_status,
        converged=converged,
        events=events,
        retry=schema == "retry",
        recheck_in=found.recheck_in,
    )
    if not observe.same(previous, new_status):
        patch = observe.merge_patch(previous, new_status)
        await kube.patch_status("tenantry.io/v1alpha1", "Tenant", model.name, patch)
        _degraded_news(previous, new_status, events)
        old_phase = (previous or {}).get("phase")
        if old_phase != new_status["phase"]:
            events.append(Event("Phase", f"{old_phase or 'New'} -> {new_status['phase']}"))
    return outcome


async def _restore_hold(kube: Kube, model: TenantModel, events: list[Event]) -> TenantModel:
    """The model with the restore hold kept only while its Restore still runs
    (``restore_hold``); a stale hold is removed from the Tenant, with an event."""
    if model.restore_hold is None:
        return model
    restore = await kube.get(API_VERSION, "Restore", model.restore_hold)
    if restore_hold.active(restore, tenant=model.name):
        return model
    await kube.patch(API_VERSION, "Tenant", model.name, restore_hold.annotation_patch(None))
    events.append(
        Event("RestoreHoldReleased", f"restore {model.restore_hold} ended: writers resume")
    )
    return dataclasses.replace(model, restore_hold=None)


def _degraded(status: Obj | None) -> Obj | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == "Degraded" and cond.get("status") == "True":
            return dict(cond)
    return None


def _degraded_news(previous: Obj | None, status: Obj, events: list[Event]) -> None:
    """A Warning event when the tenant turns Degraded or the reason for it changes."""
    now, before = _degraded(status), _degraded(previous)
    if now is None:
        return
    if before is None or (before["reason"], before["message"]) != (now["reason"], now["message"]):
        events.append(Event(str(now["reason"]), str(now["message"]), warning=True))


def check_before_apply(
    model: TenantModel, desired: list[Obj], live: dict[tuple[str, str, str], Obj]
) -> checks.Refusal | None:
    """The operator's own checks before anything is applied (checks.py). The quota is
    checked on the stack as it runs when resumed: suspending keeps the volumes, and a
    suspended tenant must fit when it comes back."""
    running = desired
    if model.suspend:
        running = builders.build(dataclasses.replace(model, suspend=False))
    return checks.volumes(desired, live) or checks.quota(running, plan=model.plan)


async def _refuse(
    kube: Kube,
    model: TenantModel,
    previous: Obj | None,
    refusal: checks.Refusal,
    events: list[Event],
) -> Outcome:
    """Nothing is applied: the status says why (Degraded; phase Refused when nothing
    exists yet), with a Warning event when that is news."""
    status = observe.refused(
        previous, reason=refusal.reason, message=refusal.message, generation=model.generation
    )
    if not observe.same(previous, status):
        await kube.patch_status("tenantry.io/v1alpha1", "Tenant", model.name, status)
        _degraded_news(previous, status, events)
    # Converged as far as the operator can take it: a spec change wakes it again.
    return Outcome(status=status, converged=True, events=events)


def comparable(previous: Obj | None) -> Obj | None:
    """The stored status restricted to the fields we write (kopf keeps its own keys)."""
    if previous is None:
        return None
    keys = (
        "observedGeneration",
        "phase",
        "conditions",
        "namespace",
        "shards",
        "replicas",
        "hostsReady",
        "hostsTotal",
        "schema",
        "backup",
        "hosts",
        "endpoints",
    )
    return {k: previous[k] for k in keys if k in previous}


_ENSURED_BUCKETS: set[str] = set()


async def _ensure_backup_target(
    kube: Kube, model: TenantModel, settings: Settings, existing: set[str], events: list[Event]
) -> Cond | None:
    """The backup bucket exists and the CronJob has credentials; or why not."""
    if model.backup is None:
        return None
    if settings.s3 is None:
        return Cond(
            "Degraded",
            True,
            "BackupNotConfigured",
            "spec.backup is set but the operator has no S3 endpoint "
            "(TENANTRY_S3_ENDPOINT); backups will not run",
        )
    if await secrets.ensure_backup(kube, model, settings.s3, existing):
        events.append(Event("SecretGenerated", f"created Secret {contract.BACKUP_S3_SECRET}"))
    bucket = model.backup.bucket
    if bucket in _ENSURED_BUCKETS:
        return None
    try:
        if await Buckets(settings.s3).ensure(bucket, tenant=model.name):
            events.append(Event("BucketCreated", f"created S3 bucket {bucket}"))
    except S3Error as err:
        return Cond("Degraded", True, "BackupBucketUnavailable", str(err))
    _ENSURED_BUCKETS.add(bucket)
    return None


async def _backup_status(
    model: TenantModel,
    settings: Settings,
    status: Obj,
    previous: Obj | None,
    cronjobs: Mapping[str, Obj],
    problems: list[failures.Problem],
    events: list[Event],
) -> None:
    """``status.backup`` and the ``BackupHealthy`` condition, and an Event when a new
    backup shows up. S3 is read only when the CronJob recorded a new success (or never
    before): an idle tenant reads nothing and, its status unchanged, writes nothing.
    A failed Job is a Degraded cause already (``failures``), with its Warning event."""
    conditions = [c for c in status["conditions"] if c.get("type") != backups.HEALTHY]
    if model.backup is None:
        status["conditions"] = conditions
        return
    before = (previous or {}).get("backup")
    success = backups.job_success(cronjobs.get(builders.backup.CRON_JOB))
    failure = next((p.message for p in problems if p.reason == failures.BACKUP_FAILED), None)
    read, unreadable = None, None
    if settings.s3 is not None and backups.needs_read(before, success):
        try:
            read = await backups.read_summary(
                settings.s3,
                bucket=model.backup.bucket,
                prefix=model.backup.prefix,
                tenant=model.name,
            )
        except S3Error as err:
            unreadable = f"cannot read the backups in S3: {err}"
    backup = backups.status(read=read, previous=before, job_success=success, failure=failure)
    status["backup"] = backup
    news = backups.new_backup(before, backup)
    if news:
        events.append(Event("BackupCompleted", news))
    cond = backups.condition(
        backup, configured=settings.s3 is not None, failure=failure, unreadable=unreadable
    )
    status["conditions"] = set_conditions(
        conditions,
        [cond],
        generation=model.generation,
        since=(previous or {}).get("conditions") or [],
    )


async def _schema(
    kube: Kube,
    model: TenantModel,
    status: Obj,
    previous: Obj | None,
    events: list[Event],
    settings: Settings,
    *,
    pods: Mapping[str, Obj],
    record: apply.Recorder | None = None,
) -> SchemaStep:
    """Provision the events schema on each host whose pod is Ready and needs it, then
    label that pod so the ``clickhouse`` Service sends it traffic; record in ``status``
    which hosts carry the schema.

    Returns "done" when there is nothing (more) to do now; "wait" while the credentials
    Secret is missing (its creation wakes the worker); "retry" when a host did not
    answer or refused, which no watch announces: the worker retries soon. An idle tenant
    (recorded schema matches, every Ready pod labelled) makes no call and no write."""
    recorded = (previous or {}).get("schema")
    if recorded:
        status["schema"] = recorded
    if model.suspend:
        return "done"
    wanted = schema_step.tenant_schema(model)
    if settings.clickhouse_override:
        # One engine stands in for every host of every tenant (local runs): the layout
        # there is the single-node one, provisioned (a no-op after the first) and
        # labelled host by host all the same.
        wanted = dataclasses.replace(wanted, cluster=None, shards=1, replicas=1)
    info = {name: schema_step.pod_info(pod) for name, pod in pods.items()}
    todo = schema_step.hosts_to_provision(previous, model, info, wanted=wanted)
    if not todo:
        return "done"
    log.info("provisioning the schema of %s on %s", model.name, ", ".join(todo))
    done = set(schema_step.provisioned_hosts(previous, wanted))
    results: list[schema_step.SchemaResult] = []
    outcome: SchemaStep = "done"
    for host in todo:
        try:
            async with connect.session(
                kube, model, override=settings.clickhouse_override, scoped=False, host=host
            ) as client:
                if client is None:  # the credentials Secret is not there yet
                    outcome = "wait"
                    break
                results.append(
                    await schema_step.ensure_schema(client, model, host=host, wanted=wanted)
                )
        except (ClickHouseError, layout.LayoutError) as err:
            log.info("schema of %s on %s not provisioned yet: %s", model.name, host, err)
            pending = f"events schema not provisioned yet on {host}: {err}"[:1000]
            status["conditions"] = set_conditions(
                status["conditions"],
                [
                    Cond("Ready", False, "SchemaPending", pending),
                    Cond("Progressing", True, "SchemaPending", pending),
                ],
                generation=model.generation,
                since=(previous or {}).get("conditions") or [],
            )
            status["phase"] = "Provisioning"
            outcome = "retry"
            break
        done.add(host)
        pod = schema_step.pod_name(host)
        if not info[pod].labelled:
            await _label_ready(kube, model, pods[pod], record)
    current = [h.name for h in model.clickhouse.hosts if h.name in done]
    status["schema"] = {
        "database": wanted.database,
        "retentionDays": wanted.retention_days,
        "shards": wanted.shards,
        "replicas": wanted.replicas,
        "hosts": current,
    }
    for result in results:
        events.extend(Event(reason, message) for reason, message in result.notices())
    return outcome


async def _label_ready(
    kube: Kube, model: TenantModel, pod: Obj, record: apply.Recorder | None
) -> None:
    """Put the schema label on a host's pod (the cluster Service selects on it)."""
    name = pod["metadata"]["name"]
    label = {builders.clickhouse.SCHEMA_LABEL: builders.clickhouse.SCHEMA_READY}
    patch = {"metadata": {"labels": label}}
    labelled = await kube.patch("v1", "Pod", name, patch, namespace=model.namespace)
    if record is not None:  # the watch confirms it; meanwhile the cache knows it
        record("v1", "Pod", labelled, False)
