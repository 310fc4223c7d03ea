"""Why a tenant's workloads cannot come up, from the Kubernetes Events of its namespace.

The operator creates StatefulSets, a Deployment and a CronJob; the pods and volumes
behind them are created by Kubernetes' controllers, and when that fails (a
ResourceQuota or an admission policy refuses the pod or the PVC, a volume cannot be
provisioned, no node can take the pod) nothing changes on the objects the operator
reads except that the pods never appear. The only record is a Warning Event. Without
reading those, a Tenant would stay ``Provisioning`` with ``Degraded=False`` for ever.

``Failures`` keeps, per tenant, the latest Warning of each object of its namespace
that matters (pods, PVCs, StatefulSets, ReplicaSets, Jobs, CronJobs) and the latest
event that resolves it (``SuccessfulCreate``, ``Scheduled``, ``ProvisioningSucceeded``,
``Completed``). ``problems`` (pure) turns those that still hold into Degraded causes:
each is tied to the workload it belongs to and counts only while that workload exists
and is not Ready (a Ready StatefulSet has nothing left to fail), and while no later
event resolved it. Deployments report their own ``ReplicaFailure`` condition, which is
read from the Deployment itself.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry import contract

Obj = dict[str, Any]

# Warnings that leave a workload without its pods or volumes, by involved kind.
WARNINGS = {
    "StatefulSet": {"FailedCreate"},
    "ReplicaSet": {"FailedCreate"},
    "Job": {"FailedCreate", "BackoffLimitExceeded", "DeadlineExceeded"},
    "CronJob": {"FailedCreate", "FailedNeedsStart"},
    "PersistentVolumeClaim": {"ProvisioningFailed"},
    "Pod": {"FailedScheduling"},
}
# Normal events after which an earlier warning of the same object no longer holds.
RESOLVED_BY = {
    "StatefulSet": {"SuccessfulCreate"},
    "ReplicaSet": {"SuccessfulCreate"},
    "Job": {"SuccessfulCreate", "Completed"},
    "CronJob": {"SuccessfulCreate", "SawCompletedJob"},
    "PersistentVolumeClaim": {"ProvisioningSucceeded"},
    "Pod": {"Scheduled"},
}
# What the operator's event watches ask for (field selectors of /api/v1/events).
SELECTORS = (
    "type=Warning",
    "reason=SuccessfulCreate",
    "reason=Scheduled",
    "reason=ProvisioningSucceeded",
    "reason=Completed",
    "reason=SawCompletedJob",
)
MESSAGE_LIMIT = 600
# A pod often fails to schedule for a moment while its new volume is bound: it counts
# once it has not been scheduled for this long (the caller looks again then).
SCHEDULING_GRACE = 10.0
# A record nothing has happened to for this long is dropped: Kubernetes keeps Events for
# an hour, and a failure that persists is reported again (its controller retries).
FORGET_AFTER = 2 * 3600.0


@dataclass(frozen=True)
class Seen:
    """One event as far as failures go: what, when (server time) and in which order."""

    reason: str
    message: str
    uid: str
    at: float  # the event's last timestamp, epoch seconds
    order: int  # arrival order, breaks ties between events of the same second
    first: float = 0.0  # when this event was first observed (its series began)

    def after(self, other: Seen | None) -> bool:
        return other is None or (self.at, self.order) > (other.at, other.order)


@dataclass
class Record:
    warning: Seen | None = None
    resolved: Seen | None = None
    since: float = 0.0  # start of the current run of warnings (none resolved in between)


Key = tuple[str, str]  # involved kind, name


@dataclass
class Failures:
    """The latest warning and resolution of each object, per tenant (fed by watches)."""

    _by_tenant: dict[str, dict[Key, Record]] = field(default_factory=dict)
    _order: Callable[[], int] = field(default_factory=lambda: itertools.count().__next__)

    def observe(self, event: Obj) -> str | None:
        """Record one Event; returns the tenant it concerns, when it matters."""
        tenant = contract.tenant_of_namespace(str((event.get("metadata") or {}).get("namespace")))
        involved = event.get("involvedObject") or event.get("regarding") or {}
        kind, name = str(involved.get("kind") or ""), str(involved.get("name") or "")
        reason = str(event.get("reason") or "")
        if tenant is None or not name:
            return None
        warning = event.get("type") == "Warning" and reason in WARNINGS.get(kind, ())
        resolving = reason in RESOLVED_BY.get(kind, ())
        if not (warning or resolving):
            return None
        seen = Seen(
            reason=reason,
            message=" ".join(str(event.get("message") or event.get("note") or "").split()),
            uid=str(involved.get("uid") or ""),
            at=_timestamp(event),
            order=self._order(),
            first=_timestamp(event, first=True),
        )
        record = self._by_tenant.setdefault(tenant, {}).setdefault((kind, name), Record())
        if warning:
            fresh = record.warning is None or not record.warning.after(record.resolved)
            record.since = seen.first if fresh else min(record.since, seen.first)
            if seen.after(record.warning):
                record.warning = seen
        elif seen.after(record.resolved):
            record.resolved = seen
        return tenant

    def relist(self, events: Iterable[Obj]) -> set[str]:
        """Record a listing, oldest first (so arrival order follows time)."""
        ordered = sorted(events, key=_timestamp)
        return {t for t in (self.observe(e) for e in ordered) if t is not None}

    def of(self, tenant: str, *, now: float | None = None) -> dict[Key, Record]:
        """The tenant's records (those idle for FORGET_AFTER are dropped first)."""
        records = self._by_tenant.get(tenant, {})
        cutoff = (time.time() if now is None else now) - FORGET_AFTER
        for key in [k for k, r in records.items() if _last(r) < cutoff]:
            del records[key]
        return dict(records)

    def forget(self, tenant: str) -> None:
        self._by_tenant.pop(tenant, None)


def _last(record: Record) -> float:
    return max(s.at for s in (record.warning, record.resolved) if s is not None)


def _timestamp(event: Obj, *, first: bool = False) -> float:
    """When the event (or, with ``first``, its series) was last (first) observed."""
    series = event.get("series") or {}
    latest = (series.get("lastObservedTime"), event.get("lastTimestamp"))
    earliest = (event.get("eventTime"), event.get("firstTimestamp"))
    created = (event.get("metadata") or {}).get("creationTimestamp")
    for value in (*earliest, *latest, created) if first else (*latest, *earliest, created):
        if value:
            try:
                return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


# -- What still holds (pure) ----------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    reason: str  # QuotaExceeded, FailedCreate, VolumeProvisioningFailed, Unschedulable, ...
    message: str
    job: str | None = None  # the failed Job (of a CronJob), whose pod may say more


BACKUP_FAILED = "BackupFailed"


def _job_of(kind: str, name: str) -> str | None:
    """The Job an involved Job or Job pod (``<job>-<5 random characters>``) belongs to."""
    if kind == "Job":
        return name
    if kind == "Pod" and "-" in name:
        return name.rsplit("-", 1)[0]
    return None


def _ordinal_of(name: str, prefix: str) -> bool:
    rest = name.removeprefix(prefix)
    return rest != name and rest.isdigit()


def _claim_names(sts: Obj) -> list[str]:
    templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    return [str((t.get("metadata") or {}).get("name")) for t in templates]


def _owner(
    kind: str,
    name: str,
    statefulsets: Mapping[str, Obj],
    deployments: Mapping[str, Obj],
    cronjobs: Mapping[str, Obj],
) -> tuple[str, str] | None:
    """The workload (kind, name) an involved object belongs to, if it is the tenant's."""
    if kind == "StatefulSet" and name in statefulsets:
        return "StatefulSet", name
    if kind == "CronJob" and name in cronjobs:
        return "CronJob", name
    if kind == "PersistentVolumeClaim":
        for sts_name, sts in statefulsets.items():
            for claim in _claim_names(sts):
                if _ordinal_of(name, f"{claim}-{sts_name}-"):
                    return "StatefulSet", sts_name
    if kind == "Pod":
        for sts_name in statefulsets:
            if _ordinal_of(name, f"{sts_name}-"):
                return "StatefulSet", sts_name
    if kind in ("ReplicaSet", "Pod"):
        for dep_name in deployments:
            if name.startswith(f"{dep_name}-"):
                return "Deployment", dep_name
    if kind in ("Job", "Pod"):
        for cron_name in cronjobs:
            if name.startswith(f"{cron_name}-"):
                return "CronJob", cron_name
    return None


_QUOTA = re.compile(r"exceeded quota", re.IGNORECASE)


def _describe(kind: str, name: str, owner: tuple[str, str], seen: Seen) -> Problem:
    what = f"{owner[0]} {owner[1]}"
    detail = seen.message[:MESSAGE_LIMIT]
    if seen.reason == "FailedCreate" and _QUOTA.search(detail):
        return Problem(
            "QuotaExceeded",
            f"{what} cannot create its pods or volumes: a ResourceQuota of the namespace "
            f"refuses them: {detail}",
        )
    if seen.reason == "FailedCreate":
        return Problem("FailedCreate", f"Kubernetes refuses to create the pods of {what}: {detail}")
    if seen.reason == "ProvisioningFailed":
        return Problem(
            "VolumeProvisioningFailed", f"volume {name} of {what} cannot be provisioned: {detail}"
        )
    if seen.reason == "FailedScheduling":
        return Problem("Unschedulable", f"pod {name} of {what} cannot be scheduled: {detail}")
    return Problem(
        BACKUP_FAILED,
        f"{kind} {name} of {what} failed ({seen.reason}): {detail}",
        job=_job_of(kind, name),
    )


def _cron_succeeded_after(cronjob: Obj, seen: Seen) -> bool:
    last = (cronjob.get("status") or {}).get("lastSuccessfulTime")
    if not last:
        return False
    try:
        at = dt.datetime.fromisoformat(str(last).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return at >= seen.at


def _deployment_problems(
    deployments: Mapping[str, Obj], ready: Callable[[Obj], bool]
) -> list[Problem]:
    out = []
    for name, dep in sorted(deployments.items()):
        if ready(dep):
            continue
        for cond in (dep.get("status") or {}).get("conditions") or []:
            message = " ".join(str(cond.get("message") or "").split())[:MESSAGE_LIMIT]
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                quota = _QUOTA.search(message)
                out.append(
                    Problem(
                        "QuotaExceeded" if quota else "FailedCreate",
                        f"Deployment {name} cannot create its pods"
                        + (": a ResourceQuota of the namespace refuses them" if quota else "")
                        + f": {message}",
                    )
                )
            elif (
                cond.get("type") == "Progressing"
                and cond.get("reason") == "ProgressDeadlineExceeded"
            ):
                out.append(
                    Problem("ProgressDeadlineExceeded", f"Deployment {name} is stuck: {message}")
                )
    return out


@dataclass(frozen=True)
class Found:
    problems: list[Problem]
    recheck_in: float | None  # a pod not scheduled yet counts in this many seconds


def problems(
    records: Mapping[Key, Record],
    *,
    statefulsets: Mapping[str, Obj],
    deployments: Mapping[str, Obj],
    cronjobs: Mapping[str, Obj],
    ready: Callable[[Obj], bool],
    deployment_ready: Callable[[Obj], bool],
    now: float,
) -> Found:
    """The failures that still hold, in a stable order (workload, then object)."""
    found: list[tuple[tuple[str, str], str, Problem]] = []
    recheck: list[float] = []
    for (kind, name), record in records.items():
        seen = record.warning
        if seen is None or not seen.after(record.resolved):
            continue
        owner = _owner(kind, name, statefulsets, deployments, cronjobs)
        if owner is None:
            continue
        if owner[0] == "StatefulSet":
            sts = statefulsets[owner[1]]
            if ready(sts):
                continue
            uid = str((sts.get("metadata") or {}).get("uid") or "")
            if kind == "StatefulSet" and seen.uid and uid and seen.uid != uid:
                continue  # about an earlier StatefulSet of that name
        elif owner[0] == "Deployment":
            if kind == "ReplicaSet":
                continue  # the Deployment's own ReplicaFailure condition says it
            if deployment_ready(deployments[owner[1]]):
                continue
        elif _cron_succeeded_after(cronjobs[owner[1]], seen):
            continue
        if seen.reason == "FailedScheduling" and now - record.since < SCHEDULING_GRACE:
            recheck.append(record.since + SCHEDULING_GRACE - now)
            continue
        found.append((owner, f"{kind}/{name}", _describe(kind, name, owner, seen)))
    found.sort(key=lambda item: (item[0], item[1]))
    return Found(
        [p for _, _, p in found] + _deployment_problems(deployments, deployment_ready),
        max(min(recheck), 0.5) if recheck else None,
    )
