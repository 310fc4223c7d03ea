"""The ``Restore`` custom resource (tenantry.io/v1alpha1): one request to bring a backup
back into a Tenant.

A restore is an action, not a desired state, so it is a resource of its own rather than
a field of the Tenant (docs/backup-restore.md, 2.1): one immutable request with its own
status, result and Events; ``kubectl get restores`` is the history; RBAC can grant
``create restores`` apart from ``update tenants``. The operator runs it as a Job in the
target tenant's namespace (``tenantry restore``) and reports the Job's progress here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from tenantry.api.common import DNS_LABEL_PATTERN, Condition, CRDModel, cel, k8s_extra

BACKUP_NAME_PATTERN = r"^(latest|[0-9]{8}T[0-9]{6}\.[0-9]{3}Z)$"
TenantName = Annotated[str, Field(min_length=1, max_length=50, pattern=DNS_LABEL_PATTERN)]


class RestoreSource(CRDModel):
    """Which backup to restore."""

    tenant: TenantName | None = None
    """Whose backups (their key prefix in the target's backup bucket); default: the
    target tenant."""
    backup: Annotated[str, Field(pattern=BACKUP_NAME_PATTERN)] = "latest"
    """latest (the newest complete backup) or a backup's name, e.g. 20261206T031500.123Z."""


class RestoreSpec(CRDModel):
    """A request to restore one backup into one Tenant. Immutable: a new restore is a new
    Restore."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[cel("self == oldSelf", "a Restore is immutable: create another one")]
        )
    )

    tenant: TenantName
    """The target Tenant (new or existing); it needs spec.backup (the bucket)."""
    source: RestoreSource = Field(default_factory=RestoreSource)
    """The backup to restore."""
    overwrite: bool = False
    """Replace the rows the target's tables hold; false: refuse when they hold any."""


class RestorePhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ShardPhase(StrEnum):
    """Where one target shard is in a restore (the job's steps, restore_job)."""

    STAGING = "Staging"
    STAGED = "Staged"
    IN_PLACE = "InPlace"


class RestoreShardStatus(CRDModel):
    """One target shard's progress, as the restore Job reports it in its log."""

    shard: Annotated[int, Field(ge=0)]
    """The target shard (0-based, in the tenant's remote_servers order)."""
    host: str | None = None
    """The replica the Job restores through (the first one that answers)."""
    phase: ShardPhase
    """Staging (the backup's rows are being read into the staging table), Staged (read
    and counted), or InPlace (moved into the tenant's table and counted again)."""
    rows: Annotated[int, Field(ge=0)] | None = None
    """The rows staged (Staged) or in place (InPlace) on this shard."""


class RestoreStatus(CRDModel):
    """Observed state, written by the operator only."""

    phase: RestorePhase | None = None
    """Pending (waiting for the target), Running, Succeeded or Failed."""
    job: str | None = None
    """The restore Job, in the target tenant's namespace."""
    message: str | None = None
    """The result: the rows restored, or why it failed."""
    backup: str | None = None
    """The backup restored, by name (``latest`` resolved), once the Job has found it."""
    rows: Annotated[int, Field(ge=0)] | None = None
    """The rows that backup holds (its manifest): what the shards must add up to."""
    progress: str | None = None
    """The shards' progress in a few words, e.g. ``1/2 shards in place``."""
    shards: Annotated[
        list[RestoreShardStatus],
        Field(
            default_factory=list,
            json_schema_extra=k8s_extra(list_type="map", list_map_keys=["shard"]),
        ),
    ]
    """Each target shard's progress, read from the Job's log while it runs and once
    more when it ends."""
    started_at: str | None = None
    """When the Job was created (RFC 3339)."""
    completed_at: str | None = None
    """When it finished (RFC 3339)."""
    conditions: Annotated[
        list[Condition],
        Field(
            default_factory=list,
            json_schema_extra=k8s_extra(list_type="map", list_map_keys=["type"]),
        ),
    ]
    """Succeeded (True, False, or Unknown while it runs), with the reason and message."""
