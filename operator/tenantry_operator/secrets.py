"""Generated credentials: created once, never rendered, logged or put in status.

The Secrets carry the tenant labels but no ownerReference: with reclaimPolicy Retain
they stay with the namespace and its volumes, so a re-created Tenant finds its data and
its passwords again. An existing Secret is never overwritten; a deleted one is created
anew (with new passwords) on the next reconcile.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from tenantry import contract
from tenantry_operator.builders import common
from tenantry_operator.kube import Kube
from tenantry_operator.model import TenantModel
from tenantry_operator.s3 import S3Config

GENERATED: dict[str, tuple[str, ...]] = {
    contract.CLICKHOUSE_SECRET: tuple(contract.CLICKHOUSE_PASSWORD_KEYS.values()),
    contract.CLICKHOUSE_INTERSERVER_SECRET: (contract.CLICKHOUSE_INTERSERVER_KEY,),
    contract.REDIS_SECRET: (contract.REDIS_PASSWORD_KEY,),
}


def generated_secret(model: TenantModel, name: str) -> dict[str, Any]:
    """Generated Secret ``name`` (one of ``GENERATED``) with fresh random values."""
    keys = GENERATED[name]
    data = {k: base64.b64encode(secrets.token_urlsafe(32).encode()).decode() for k in keys}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": model.namespace,
            "labels": model.labels("credentials"),
        },
        "data": data,
    }


async def ensure(kube: Kube, model: TenantModel, existing: set[str]) -> list[str]:
    """Create the generated Secrets missing from ``existing``; return the names created."""
    created = []
    for name in GENERATED:
        if name in existing:
            continue
        if await kube.create(generated_secret(model, name)) is not None:
            created.append(name)
    return created


async def _create_copied(
    kube: Kube, model: TenantModel, name: str, component: str, data: dict[str, str]
) -> bool:
    """Create Secret ``name`` holding ``data`` (values the operator copies from its own
    settings); False when it was already there."""
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": model.namespace, "labels": model.labels(component)},
        "stringData": data,
    }
    return await kube.create(obj) is not None


def backup_secret_data(s3: S3Config) -> dict[str, str]:
    """What Secret ``backup-s3-credentials`` holds: the operator's own S3 settings."""
    return {
        common.BACKUP_S3_KEYS["access_key_id"]: s3.access_key_id,
        common.BACKUP_S3_KEYS["secret_access_key"]: s3.secret_access_key,
        common.BACKUP_S3_ENDPOINT_KEY: s3.endpoint,
        common.BACKUP_S3_REGION_KEY: s3.region,
    }


async def ensure_backup(kube: Kube, model: TenantModel, s3: S3Config, existing: set[str]) -> bool:
    """The S3 credentials the backup CronJob uses (copied from the operator's settings)."""
    if contract.BACKUP_S3_SECRET in existing:
        return False
    data = backup_secret_data(s3)
    return await _create_copied(kube, model, contract.BACKUP_S3_SECRET, "backup", data)


async def ensure_ingestion(kube: Kube, model: TenantModel, token: str, existing: set[str]) -> bool:
    """The internal token ingestion pods present to the control plane (copied from the
    operator's settings; delete the Secret to roll a new token out)."""
    if contract.INGESTION_SECRET in existing:
        return False
    data = {contract.INGESTION_TOKEN_KEY: token}
    return await _create_copied(kube, model, contract.INGESTION_SECRET, "ingestion", data)
