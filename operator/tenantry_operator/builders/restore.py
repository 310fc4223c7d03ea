"""Restores: a Job that runs ``tenantry restore`` (``restore_job``) in the Tenantry image.

One Job per restore request, in the target tenant's namespace, owned by the Tenant.
Its environment is the backup job's (``backup.cluster_env``: the target's hosts per
shard, ClickHouse admin access, the bucket and S3 credentials) plus what to restore:
whose backups, which one (``latest`` or a name), whether existing rows may be replaced,
and the target's retention (the staging table has the storing table's structure). The
integration test runs exactly this container's command and environment.
"""

from __future__ import annotations

from typing import Any

from tenantry_operator import model as m
from tenantry_operator.builders import backup, common, render

COMPONENT = "restore"
COMMAND = ["tenantry", "restore"]


def env(
    model: m.TenantModel, *, source_tenant: str, backup_name: str, overwrite: bool
) -> list[dict[str, Any]]:
    return [
        *backup.cluster_env(model),
        {"name": "TENANTRY_RESTORE_SOURCE_TENANT", "value": source_tenant},
        {"name": "TENANTRY_RESTORE_BACKUP", "value": backup_name},
        {"name": "TENANTRY_RESTORE_OVERWRITE", "value": "true" if overwrite else "false"},
        {"name": "TENANTRY_CLICKHOUSE_RETENTION_DAYS", "value": str(model.retention_days)},
    ]


def job(
    model: m.TenantModel,
    *,
    name: str,
    source_tenant: str,
    backup_name: str,
    overwrite: bool,
) -> common.Manifest:
    """The restore Job ``name`` (the target must have ``spec.backup``: its bucket)."""
    if model.backup is None:
        raise ValueError(f"tenant {model.name} has no spec.backup to restore from")
    context: dict[str, Any] = {
        "metadata": common.metadata(model, name=name, component=COMPONENT),
        "pod_labels": common.labels(model, COMPONENT),
        "pod_security": common.pod_security_context(common.UID_TENANTRY),
        "image": model.backup.image,
        "command": COMMAND,
        "env": env(
            model, source_tenant=source_tenant, backup_name=backup_name, overwrite=overwrite
        ),
        "resources": common.resources(backup.RESOURCES),
        "container_security": common.container_security_context(),
    }
    return render.one("backup/restore-job.yaml.j2", **context)
