"""Warnings Kubernetes records about a tenant's pods and volumes become Degraded causes
while they hold (failures.py). Events here have the shape the API server lists them in
(core/v1, as the StatefulSet controller and the scheduler write them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tenantry_operator import failures, observe
from tenantry_operator.conditions import Cond
from tenantry_operator.observe import deployment_ready
from tenantry_operator.rollout import RolloutPlan, sts_ready

from tests.unit.operator import fixtures

Obj = dict[str, Any]
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
NS = "tenant-acme"


def _at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def controller_event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    at: float,
    *,
    warning: bool = True,
    uid: str = "",
) -> Obj:
    return {
        "metadata": {"name": f"{name}.{reason}.{at}", "namespace": NS},
        "involvedObject": {"kind": kind, "name": name, "namespace": NS, "uid": uid},
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "firstTimestamp": _at(at),
        "lastTimestamp": _at(at),
        "count": 1,
    }


def scheduler_event(pod: str, reason: str, message: str, first: float, last: float) -> Obj:
    event: Obj = {
        "metadata": {"name": f"{pod}.{reason}.{first}", "namespace": NS},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": NS},
        "reason": reason,
        "message": message,
        "type": "Warning" if reason == "FailedScheduling" else "Normal",
        "eventTime": _micro(first),
        "firstTimestamp": None,
        "lastTimestamp": None,
    }
    if last != first:
        event["series"] = {"count": 2, "lastObservedTime": _micro(last)}
    return event


def sts(name: str, *, ready: bool, uid: str = "uid-1", claims: tuple[str, ...] = ("data",)) -> Obj:
    return {
        "metadata": {"name": name, "generation": 1, "uid": uid},
        "spec": {
            "replicas": 1,
            "volumeClaimTemplates": [{"metadata": {"name": c}} for c in claims],
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1 if ready else 0,
            "readyReplicas": 1 if ready else 0,
            "updatedReplicas": 1 if ready else 0,
            "currentRevision": "r1",
            "updateRevision": "r1",
        },
    }


QUOTA = (
    'create Pod ch-s0-r0-0 in StatefulSet ch-s0-r0 failed error: pods "ch-s0-r0-0" is '
    "forbidden: exceeded quota: quota, requested: limits.cpu=20, used: limits.cpu=1, "
    "limited: limits.cpu=16"
)


def found(
    store: failures.Failures,
    *,
    statefulsets: dict[str, Obj] | None = None,
    deployments: dict[str, Obj] | None = None,
    cronjobs: dict[str, Obj] | None = None,
    now: float = 100.0,
) -> failures.Found:
    return failures.problems(
        store.of("acme", now=T0.timestamp() + now),
        statefulsets=statefulsets if statefulsets is not None else {},
        deployments=deployments or {},
        cronjobs=cronjobs or {},
        ready=sts_ready,
        deployment_ready=deployment_ready,
        now=T0.timestamp() + now,
    )


def test_a_quota_refusing_a_pod_is_a_problem_in_plain_words() -> None:
    store = failures.Failures()
    assert store.observe(controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", QUOTA, 1)) == (
        "acme"
    )
    result = found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=False)})
    [problem] = result.problems
    assert problem.reason == "QuotaExceeded"
    assert problem.message.startswith(
        "StatefulSet ch-s0-r0 cannot create its pods or volumes: a ResourceQuota"
    )
    assert "exceeded quota: quota, requested: limits.cpu=20" in problem.message


def test_other_creation_failures_keep_kubernetes_words() -> None:
    store = failures.Failures()
    denied = 'pods "ch-s0-r0-0" is forbidden: violates PodSecurity "restricted:latest"'
    store.observe(controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", denied, 1))
    [problem] = found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=False)}).problems
    assert problem.reason == "FailedCreate"
    assert denied in problem.message


def test_a_later_successful_create_resolves_it() -> None:
    store = failures.Failures()
    store.observe(controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", QUOTA, 1))
    ok = "create Pod ch-s0-r0-0 in StatefulSet ch-s0-r0 successful"
    store.observe(
        controller_event("StatefulSet", "ch-s0-r0", "SuccessfulCreate", ok, 5, warning=False)
    )
    assert found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=False)}).problems == []
    # ... and a failure after that counts again.
    store.observe(controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", QUOTA, 9))
    assert len(found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=False)}).problems) == 1


def test_a_relisting_orders_by_time_not_by_list_order() -> None:
    store = failures.Failures()
    ok = controller_event("StatefulSet", "ch-s0-r0", "SuccessfulCreate", "ok", 5, warning=False)
    bad = controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", QUOTA, 1)
    store.relist([ok, bad])
    assert found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=False)}).problems == []


def test_a_ready_workload_or_another_statefulset_of_that_name_has_no_problem() -> None:
    store = failures.Failures()
    store.observe(controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", QUOTA, 1, uid="old"))
    assert (
        found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=True, uid="old")}).problems
        == []
    )
    assert (
        found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=False, uid="new")}).problems
        == []
    )
    assert found(store, statefulsets={}).problems == []  # gone (scaled in)


def test_a_volume_that_cannot_be_provisioned_is_tied_to_its_statefulset() -> None:
    store = failures.Failures()
    message = 'storageclass.storage.k8s.io "nope" not found'
    store.observe(
        controller_event(
            "PersistentVolumeClaim", "data-ch-s0-r0-0", "ProvisioningFailed", message, 1
        )
    )
    [problem] = found(store, statefulsets={"ch-s0-r0": sts("ch-s0-r0", ready=False)}).problems
    assert problem.reason == "VolumeProvisioningFailed"
    assert problem.message == (
        f"volume data-ch-s0-r0-0 of StatefulSet ch-s0-r0 cannot be provisioned: {message}"
    )


def test_an_unscheduled_pod_counts_after_the_grace_and_says_when_to_look_again() -> None:
    store = failures.Failures()
    message = "0/3 nodes are available: 3 Insufficient cpu."
    store.observe(scheduler_event("ch-s0-r0-0", "FailedScheduling", message, 1, 2))
    workloads = {"ch-s0-r0": sts("ch-s0-r0", ready=False)}
    early = found(store, statefulsets=workloads, now=4)
    assert early.problems == []
    assert early.recheck_in is not None
    assert abs(early.recheck_in - (1 + failures.SCHEDULING_GRACE - 4)) < 0.01
    late = found(store, statefulsets=workloads, now=1 + failures.SCHEDULING_GRACE)
    [problem] = late.problems
    assert problem.reason == "Unschedulable"
    assert (
        problem.message == f"pod ch-s0-r0-0 of StatefulSet ch-s0-r0 cannot be scheduled: {message}"
    )


def test_a_pod_scheduled_after_waiting_for_its_volume_has_no_problem() -> None:
    """The usual moment at creation: no node until the volume is bound, then Scheduled."""
    store = failures.Failures()
    unbound = "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    store.observe(scheduler_event("redis-0", "FailedScheduling", unbound, 1.0, 1.2))
    store.observe(scheduler_event("redis-0", "Scheduled", "Successfully assigned", 1.4, 1.4))
    result = found(store, statefulsets={"redis": sts("redis", ready=False)}, now=60)
    assert result.problems == []
    assert result.recheck_in is None


def test_deployment_replica_failure_condition() -> None:
    dep: Obj = {
        "metadata": {"name": "ingestion", "generation": 2},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 2,
            "availableReplicas": 1,
            "updatedReplicas": 1,
            "conditions": [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": 'pods "ingestion-abc" is forbidden: exceeded quota: quota',
                }
            ],
        },
    }
    [problem] = found(failures.Failures(), deployments={"ingestion": dep}).problems
    assert problem.reason == "QuotaExceeded"
    assert problem.message.startswith("Deployment ingestion cannot create its pods")
    dep["status"].update(availableReplicas=2, updatedReplicas=2)
    assert found(failures.Failures(), deployments={"ingestion": dep}).problems == []


def test_a_failed_backup_holds_until_a_later_success() -> None:
    store = failures.Failures()
    store.observe(
        controller_event(
            "Job",
            "backup-29000000",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            10,
        )
    )
    cron: Obj = {"metadata": {"name": "backup"}, "status": {"lastSuccessfulTime": _at(5)}}
    [problem] = found(store, cronjobs={"backup": cron}).problems
    assert problem.reason == "BackupFailed"
    assert "Job backup-29000000 of CronJob backup failed (BackoffLimitExceeded)" in problem.message
    assert problem.job == "backup-29000000"  # whose pod's own line the operator reads
    cron["status"]["lastSuccessfulTime"] = _at(20)
    assert found(store, cronjobs={"backup": cron}).problems == []


def test_events_of_other_namespaces_and_normal_noise_are_ignored() -> None:
    store = failures.Failures()
    elsewhere = controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", QUOTA, 1)
    elsewhere["metadata"]["namespace"] = "kube-system"
    assert store.observe(elsewhere) is None
    noise = controller_event("Pod", "ch-s0-r0-0", "Pulled", "image pulled", 1, warning=False)
    assert store.observe(noise) is None
    assert store.of("acme") == {}


def test_records_idle_for_hours_are_forgotten() -> None:
    store = failures.Failures()
    store.observe(controller_event("StatefulSet", "ch-s0-r0", "FailedCreate", QUOTA, 1))
    assert store.of("acme", now=T0.timestamp() + 60)
    assert store.of("acme", now=T0.timestamp() + failures.FORGET_AFTER + 2) == {}


def test_many_problems_make_one_bounded_message() -> None:
    model = fixtures.model("tenant-starter")
    problems = tuple(Cond("Degraded", True, "FailedCreate", "x" * 600) for _ in range(20))
    plan = RolloutPlan(apply=frozenset(), hold=frozenset(), pending=())
    obs = observe.Observation(
        model=model, statefulsets={}, deployments={}, rollout=plan, problems=problems
    )
    conds, _ = observe.conditions(obs)
    [degraded] = [c for c in conds if c.type == "Degraded"]
    assert degraded.reason == "FailedCreate"
    assert len(degraded.message) <= observe.MESSAGE_LIMIT
    assert degraded.message.endswith("(+19 more)")
