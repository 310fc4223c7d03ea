"""Backups: a CronJob that runs ``tenantry backup`` (``backup_job``) in the Tenantry image.

The job asks each shard's first answering replica to ``BACKUP DATABASE ... TO S3``
(the server uploads straight to S3), writes the backup's manifest last and deletes what
retention no longer keeps, under ``<bucket>/<prefix><tenant>/<name>/``. Why per shard
and not one statement against the ``clickhouse`` Service: that Service reaches one
arbitrary host, which holds only its own shard's data, and ``ON CLUSTER`` needs Keeper,
which single-replica tenants do not run.

Everything the job needs is in its environment, rendered here: the hosts per shard
(each host's own Service), the database, bucket, prefix and retention, and, from
Secrets, the ClickHouse admin password and ``backup-s3-credentials`` (which the
operator creates from its own S3 settings; the endpoint and region keys are optional).
The integration test runs exactly this container's command and environment.
"""

from __future__ import annotations

import json
from typing import Any

from tenantry import contract
from tenantry_operator import model as m
from tenantry_operator.builders import clickhouse, common, render

COMPONENT = "backup"
# The job only drives the servers and S3; the heavy lifting happens in the servers.
RESOURCES = m.Resources(
    cpu_request="50m", cpu_limit="500m", memory_request="128Mi", memory_limit="256Mi"
)
COMMAND = ["tenantry", "backup"]
CRON_JOB = "backup"


def hosts(model: m.TenantModel) -> list[list[str]]:
    """Per shard, its replicas' host names, in the order the job tries them."""
    ch = model.clickhouse
    return [
        [clickhouse.host_fqdn(model, m.Host(s, r)) for r in range(ch.replicas)]
        for s in range(ch.shards)
    ]


def env(model: m.TenantModel) -> list[dict[str, Any]]:
    """The backup job's environment."""
    assert model.backup is not None
    out = cluster_env(model)
    # after the prefix, where it always was (an unchanged CronJob is not re-applied)
    at = next(i for i, e in enumerate(out) if e["name"] == "TENANTRY_BACKUP_PREFIX") + 1
    out.insert(at, {"name": "TENANTRY_BACKUP_RETENTION", "value": str(model.backup.retention)})
    return out


def cluster_env(model: m.TenantModel) -> list[dict[str, Any]]:
    """What the backup and the restore job both read (``backup_job.ClusterJobSettings``):
    the hosts, ClickHouse admin access, the bucket and the S3 credentials."""
    assert model.backup is not None
    backup = model.backup
    return [
        {"name": "TENANTRY_TENANT", "value": model.name},
        {"name": "TENANTRY_CLICKHOUSE_DATABASE", "value": model.database},
        {"name": "TENANTRY_BACKUP_HOSTS", "value": json.dumps(hosts(model))},
        {"name": "TENANTRY_CLICKHOUSE_PORT", "value": str(clickhouse.HTTP_PORT)},
        {"name": "TENANTRY_CLICKHOUSE_USER", "value": "admin"},
        common.secret_env(
            "TENANTRY_CLICKHOUSE_PASSWORD",
            secret=contract.CLICKHOUSE_SECRET,
            key=contract.CLICKHOUSE_PASSWORD_KEYS["admin"],
        ),
        {"name": "TENANTRY_BACKUP_BUCKET", "value": backup.bucket},
        {"name": "TENANTRY_BACKUP_PREFIX", "value": backup.prefix},
        common.secret_env(
            "TENANTRY_S3_ACCESS_KEY_ID",
            secret=contract.BACKUP_S3_SECRET,
            key=common.BACKUP_S3_KEYS["access_key_id"],
        ),
        common.secret_env(
            "TENANTRY_S3_SECRET_ACCESS_KEY",
            secret=contract.BACKUP_S3_SECRET,
            key=common.BACKUP_S3_KEYS["secret_access_key"],
        ),
        common.secret_env(
            "TENANTRY_S3_ENDPOINT",
            secret=contract.BACKUP_S3_SECRET,
            key=common.BACKUP_S3_ENDPOINT_KEY,
            optional=True,
        ),
        common.secret_env(
            "TENANTRY_S3_REGION",
            secret=contract.BACKUP_S3_SECRET,
            key=common.BACKUP_S3_REGION_KEY,
            optional=True,
        ),
    ]


def cron_jobs(model: m.TenantModel) -> list[common.Manifest]:
    if model.backup is None:
        return []
    context: dict[str, Any] = {
        "metadata": common.metadata(model, name=CRON_JOB, component=COMPONENT),
        "schedule": model.backup.schedule,
        "time_zone": model.backup.time_zone,
        # A restore suspends it: a backup of a half-restored tenant would push good
        # backups out of retention.
        "suspend": model.suspend or model.restore_hold is not None,
        "pod_labels": common.labels(model, COMPONENT),
        "pod_security": common.pod_security_context(common.UID_TENANTRY),
        "image": model.backup.image,
        "command": COMMAND,
        "env": env(model),
        "resources": common.resources(RESOURCES),
        "container_security": common.container_security_context(),
    }
    return [render.one("backup/cronjob.yaml.j2", **context)]


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return cron_jobs(model)
