"""Holding a tenant's writes while a Restore runs into it, and letting them go after.

The design that loses nothing (docs/backup-restore.md, 2.1): the producers keep being
served, and only the writer stops.

- The restore worker annotates the target Tenant (``contract.ANNOTATION_RESTORE_HOLD``:
  the Restore's name). The tenant's reconcile then renders the ingestion pods with
  ``tenantry ingest --no-writer``: they still accept events (202) into the tenant's
  Redis Stream, which keeps them durably, or answer 429 + Retry-After once its backlog
  bound is reached; no insert reaches ClickHouse. The backup CronJob is suspended. The
  Tenant shows the condition ``Restoring``.
- The restore Job is created only once *every* ingestion pod, terminating ones included,
  runs without a writer (``writers_held``): an old pod in its grace period may still be
  finishing an insert.
- When the Restore ends (succeeded or failed), the worker removes the annotation; the
  pods roll back to writers, which take over the entries the held pods accepted
  (XAUTOCLAIM of dead consumers' entries, in-flight journals replayed with their
  deduplication tokens) and write them into the restored tables.
- A hold whose Restore is gone or finished (deleted mid-way, an operator killed between
  the two steps) is dropped by the tenant's reconcile (``active``): nothing is held for
  ever.

Why not scale ingestion to zero (the first design): producers would get refused
connections for as long as the restore runs, hours for a large tenant, and most of them
drop events they cannot send. Why not 503 for every request: the same, with a Retry-After.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tenantry import contract
from tenantry.api.restore import RestorePhase
from tenantry_operator.conditions import Cond

RESTORING = "Restoring"
DONE = (RestorePhase.SUCCEEDED.value, RestorePhase.FAILED.value)


def holder(tenant: Mapping[str, Any] | None) -> str | None:
    """The Restore named by the Tenant's hold annotation, if any (pure)."""
    annotations = ((tenant or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(contract.ANNOTATION_RESTORE_HOLD)
    return str(value) if value else None


def active(restore: Mapping[str, Any] | None, *, tenant: str) -> bool:
    """Whether ``restore`` still holds ``tenant`` (pure): it exists, targets that tenant
    and has not ended."""
    if restore is None or (restore.get("spec") or {}).get("tenant") != tenant:
        return False
    return (restore.get("status") or {}).get("phase") not in DONE


def annotation_patch(restore: str | None) -> dict[str, Any]:
    """The merge patch that sets (a name) or removes (None) the hold on a Tenant."""
    return {"metadata": {"annotations": {contract.ANNOTATION_RESTORE_HOLD: restore}}}


def _writes(pod: Mapping[str, Any]) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or []
    return any(contract.INGEST_NO_WRITER_FLAG not in (c.get("args") or []) for c in containers)


def writers_held(pods: Iterable[Mapping[str, Any]]) -> bool:
    """No ingestion pod, running or terminating, runs a writer (pure)."""
    return not any(_writes(p) for p in pods)


def condition(restore: str | None, *, before: Iterable[Mapping[str, Any]]) -> Cond | None:
    """The Tenant's ``Restoring`` condition (pure): True while a Restore holds it; False
    once it ended, for a tenant that had one; absent for a tenant never restored into."""
    if restore is not None:
        return Cond(
            RESTORING,
            True,
            "RestoreRunning",
            f"restore {restore} runs: ingestion accepts events into Redis but writes "
            "none until it ends; backups are suspended",
        )
    if any(c.get("type") == RESTORING for c in before):
        return Cond(RESTORING, False, "NoRestore", "no restore runs into this tenant")
    return None
