"""Backups: a CronJob that asks ClickHouse to ``BACKUP ... TO S3`` once per shard.

Why per shard and not one statement against the ``clickhouse`` Service: that Service
reaches one arbitrary host, which only holds its own shard's data, and ``ON CLUSTER``
needs Keeper, which single-replica tenants do not run. So the job backs up each shard
from the first of its replicas that answers, to ``<prefix><tenant>/<time>/shard-<n>/``.

The bucket itself, retention (deleting old backups) and the Secret
``backup-s3-credentials`` belong to the apply step (boto3); the job only references
them. The S3 endpoint is an optional key of that Secret (AWS when absent).
"""

from __future__ import annotations

from typing import Any

from tenantry import contract
from tenantry_operator import model as m
from tenantry_operator.builders import clickhouse, common, render

COMPONENT = "backup"
# The job only drives clickhouse-client; the heavy lifting happens in the servers.
RESOURCES = m.Resources(
    cpu_request="50m", cpu_limit="500m", memory_request="128Mi", memory_limit="256Mi"
)


def _sql_string(value: str) -> str:
    """Escaped for use inside a single-quoted ClickHouse string literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def script(model: m.TenantModel) -> str:
    assert model.backup is not None
    ch = model.clickhouse
    shards = [
        [clickhouse.host_fqdn(model, m.Host(s, r)) for r in range(ch.replicas)]
        for s in range(ch.shards)
    ]
    path = f"{model.backup.bucket}/{model.backup.prefix}{model.name}/"
    return render.text(
        "backup/backup.sh.j2",
        path=_sql_string(path),
        port=clickhouse.NATIVE_PORT,
        shards=shards,
    )


def env() -> list[dict[str, Any]]:
    return [
        # clickhouse-client writes its history under $HOME; /tmp is the pod's emptyDir.
        {"name": "HOME", "value": "/tmp"},  # noqa: S108
        common.secret_env(
            "CLICKHOUSE_PASSWORD",
            secret=contract.CLICKHOUSE_SECRET,
            key=contract.CLICKHOUSE_PASSWORD_KEYS["admin"],
        ),
        common.secret_env(
            "AWS_ACCESS_KEY_ID",
            secret=contract.BACKUP_S3_SECRET,
            key=common.BACKUP_S3_KEYS["access_key_id"],
        ),
        common.secret_env(
            "AWS_SECRET_ACCESS_KEY",
            secret=contract.BACKUP_S3_SECRET,
            key=common.BACKUP_S3_KEYS["secret_access_key"],
        ),
        common.secret_env(
            "S3_ENDPOINT",
            secret=contract.BACKUP_S3_SECRET,
            key=common.BACKUP_S3_ENDPOINT_KEY,
            optional=True,
        ),
    ]


def cron_jobs(model: m.TenantModel) -> list[common.Manifest]:
    if model.backup is None:
        return []
    context: dict[str, Any] = {
        "metadata": common.metadata(model, name="backup", component=COMPONENT),
        "schedule": model.backup.schedule,
        "time_zone": model.backup.time_zone,
        "suspend": model.suspend,
        "pod_labels": common.labels(model, COMPONENT),
        "pod_security": common.pod_security_context(common.UID_CLICKHOUSE),
        "image": model.backup.image,
        "script": script(model),
        "env": env(),
        "resources": common.resources(RESOURCES),
        "container_security": common.container_security_context(),
    }
    return [render.one("backup/cronjob.yaml.j2", **context)]


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return cron_jobs(model)
