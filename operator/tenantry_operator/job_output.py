"""What a failed backup or restore Job said, for the status and Events of the resource
it worked for.

Both jobs print one line on failure (``backup failed: ...``, ``restore failed: ...``),
and their pods' ``terminationMessagePolicy: FallbackToLogsOnError`` puts it in the pod's
status, where the operator reads it. The job redacts its own secrets already; the
operator redacts again (``redaction``) with every value it knows that must stay secret,
the tenant's credentials Secrets and its own S3 keys, because a status and an Event can
be read by anyone who may read the resource.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from tenantry import contract
from tenantry_operator import failures
from tenantry_operator.kube import Kube
from tenantry_operator.model import TenantModel
from tenantry_operator.redaction import redact
from tenantry_operator.s3 import S3Config

LINE_LIMIT = 1000  # characters of the job's line kept in a status or an Event
_SECRETS = (
    contract.CLICKHOUSE_SECRET,
    contract.CLICKHOUSE_INTERSERVER_SECRET,
    contract.REDIS_SECRET,
    contract.BACKUP_S3_SECRET,
)


def last_line(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """The last line of the first container termination message among ``pods`` (pure)."""
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            lines = str(terminated.get("message") or "").strip().splitlines()
            if lines:
                return lines[-1].strip()[:LINE_LIMIT]
    return None


async def job_pods(kube: Kube, namespace: str, job: str) -> list[dict[str, Any]]:
    """Job ``job``'s pods."""
    return await kube.list("v1", "Pod", namespace=namespace, labels={"job-name": job})


async def log_lines(
    kube: Kube, namespace: str, pods: Sequence[Mapping[str, Any]], *, tail_lines: int
) -> list[str]:
    """The last lines of the log of the newest of a Job's ``pods`` (``job_pods``),
    unredacted (empty when there is no pod or its log cannot be read)."""
    if not pods:
        return []
    newest = max(pods, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))
    found = await kube.log(newest["metadata"]["name"], namespace, tail_lines=tail_lines)
    return found or []


def _values(secret: Mapping[str, Any] | None) -> list[str]:
    out = []
    for encoded in ((secret or {}).get("data") or {}).values():
        try:
            out.append(base64.b64decode(str(encoded)).decode())
        except (binascii.Error, UnicodeDecodeError):
            continue
    return out


async def known_secrets(kube: Kube, model: TenantModel, s3: S3Config | None) -> list[str]:
    """Every value the operator knows a tenant's job could print and must not: the
    tenant's credentials Secrets and the operator's S3 keys."""
    found = await asyncio.gather(
        *(kube.get("v1", "Secret", name, namespace=model.namespace) for name in _SECRETS)
    )
    values = [v for secret in found for v in _values(secret)]
    if s3 is not None:
        values += [s3.access_key_id, s3.secret_access_key]
    return values


async def safe_line(
    kube: Kube,
    model: TenantModel,
    s3: S3Config | None,
    *,
    job: str,
    pods: Sequence[Mapping[str, Any]] | None = None,
) -> str | None:
    """Job ``job``'s line, redacted, or None when its pod is gone or said nothing
    (``pods``: the Job's pods when the caller has listed them already)."""
    if pods is None:
        pods = await job_pods(kube, model.namespace, job)
    line = last_line(pods)
    if line is None:
        return None
    return redact(line, await known_secrets(kube, model, s3))


async def explain_backup_failures(
    kube: Kube,
    model: TenantModel,
    s3: S3Config | None,
    problems: list[failures.Problem],
    *,
    last_error: str | None,
) -> list[failures.Problem]:
    """``problems`` with each failed backup Job's own line (redacted) added to its
    message, so that ``status.backup.lastError``, ``BackupHealthy``, ``Degraded`` and
    the Warning event say why the backup failed, not only that it did. The line is read
    once per failure: while ``last_error`` (the stored ``status.backup.lastError``)
    already explains the same failure, it is reused and nothing is read."""
    out = []
    for problem in problems:
        if problem.reason != failures.BACKUP_FAILED or problem.job is None:
            out.append(problem)
            continue
        if last_error and last_error.startswith(f"{problem.message}; "):
            out.append(dataclasses.replace(problem, message=last_error))
            continue
        line = await safe_line(kube, model, s3, job=problem.job)
        if line:
            problem = dataclasses.replace(problem, message=f"{problem.message}; {line}")
        out.append(problem)
    return out
