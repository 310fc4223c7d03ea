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
from tenantry_operator.kube import Kube
from tenantry_operator.model import TenantModel
from tenantry_operator.s3 import S3Config

GENERATED: dict[str, tuple[str, ...]] = {
    contract.CLICKHOUSE_SECRET: tuple(contract.CLICKHOUSE_PASSWORD_KEYS.values()),
    contract.REDIS_SECRET: (contract.REDIS_PASSWORD_KEY,),
}


def _secret(model: TenantModel, name: str, keys: tuple[str, ...]) -> dict[str, Any]:
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
    for name, keys in GENERATED.items():
        if name in existing:
            continue
        if await kube.create(_secret(model, name, keys)) is not None:
            created.append(name)
    return created


async def ensure_backup(kube: Kube, model: TenantModel, s3: S3Config, existing: set[str]) -> bool:
    """The S3 credentials the backup CronJob uses (copied from the operator's settings)."""
    if contract.BACKUP_S3_SECRET in existing:
        return False
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": contract.BACKUP_S3_SECRET,
            "namespace": model.namespace,
            "labels": model.labels("backup"),
        },
        "stringData": {
            "access-key-id": s3.access_key_id,
            "secret-access-key": s3.secret_access_key,
            "endpoint": s3.endpoint,
            "region": s3.region,
        },
    }
    return await kube.create(obj) is not None


async def ensure_ingestion(kube: Kube, model: TenantModel, token: str, existing: set[str]) -> bool:
    """The internal token ingestion pods present to the control plane (copied from the
    operator's settings; delete the Secret to roll a new token out)."""
    if contract.INGESTION_SECRET in existing:
        return False
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": contract.INGESTION_SECRET,
            "namespace": model.namespace,
            "labels": model.labels("ingestion"),
        },
        "stringData": {contract.INGESTION_TOKEN_KEY: token},
    }
    return await kube.create(obj) is not None
