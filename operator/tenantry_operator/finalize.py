"""Tenant deletion (behind the operator's finalizer).

reclaimPolicy Retain (default): the namespace, its volumes (PVCs) and the generated
credentials stay; everything else is owned by the Tenant and garbage-collected by
Kubernetes once the Tenant is gone. A Tenant re-created with the same name adopts them.
reclaimPolicy Delete: the namespace (and with it every volume) is deleted. The tenant's
backups stay in S3 unless ``spec.backup.deleteWithTenant`` is true: they are the last
line of defence against a Tenant deleted by mistake, and a new Tenant can be restored
from them (docs/backup-restore.md, 2.4). With ``deleteWithTenant`` they (and the
tenant's own bucket) are removed; S3 gets a bounded number of retries, after which the
deletion completes anyway with a Warning event that names the bucket to clean up by
hand, so a Tenant is never stuck because S3 is down.
"""

from __future__ import annotations

from typing import Any

import kopf

from tenantry.api import API_VERSION
from tenantry.backoff import Backoff
from tenantry_operator import normalize
from tenantry_operator.conditions import Cond, set_condition
from tenantry_operator.kube import Kube
from tenantry_operator.reconcile import Event
from tenantry_operator.s3 import Buckets, S3Config, S3Error

# kopf calls the deletion handler again after these delays: 1 s doubling up to 30 s.
CLEANUP_BACKOFF = Backoff(first=1, cap=30)

RETAINED_LABEL = "tenantry.io/retained"


async def finalize(
    kube: Kube, *, body: dict[str, Any], s3: S3Config | None, retry: int, max_retries: int
) -> list[Event]:
    """Clean up; the returned events are for the handler to post. Raises
    ``kopf.TemporaryError`` while S3 cleanup should be retried."""
    events: list[Event] = []
    name = body["metadata"]["name"]
    namespace = normalize.namespace_of(name)
    spec = body.get("spec") or {}
    if spec.get("reclaimPolicy", "Retain") == "Delete":
        backup = spec.get("backup")
        if backup and not backup.get("deleteWithTenant"):
            events.append(
                Event(
                    "BackupsKept",
                    f"kept the backups of {name} in bucket {backup['bucket']} "
                    "(spec.backup.deleteWithTenant is false)",
                )
            )
        elif backup and s3 is not None:
            events.append(
                await _delete_backups(
                    kube, body=body, s3=s3, backup=backup, retry=retry, max_retries=max_retries
                )
            )
        if await kube.delete("v1", "Namespace", namespace):
            events.append(Event("Deleting", f"deleted namespace {namespace}"))
        return events
    if await kube.get("v1", "Namespace", namespace) is not None:
        await kube.patch(
            "v1", "Namespace", namespace, {"metadata": {"labels": {RETAINED_LABEL: "true"}}}
        )
        events.append(
            Event(
                "Retained",
                f"kept namespace {namespace} with its volumes and "
                "credentials (reclaimPolicy Retain)",
            )
        )
    return events


async def _delete_backups(
    kube: Kube,
    *,
    body: dict[str, Any],
    s3: S3Config,
    backup: dict[str, Any],
    retry: int,
    max_retries: int,
) -> Event:
    name = body["metadata"]["name"]
    bucket = backup["bucket"]
    try:
        removed = await Buckets(s3).delete_tenant_data(
            bucket, prefix=backup.get("prefix", ""), tenant=name
        )
    except S3Error as err:
        if retry + 1 < max_retries:
            await kube.patch_status(
                API_VERSION,
                "Tenant",
                name,
                {
                    # The whole list: a merge patch replaces a list, so what is sent
                    # must carry every other condition, each as it was.
                    "conditions": set_condition(
                        (body.get("status") or {}).get("conditions"),
                        Cond(
                            "Degraded",
                            True,
                            "BackupCleanupFailed",
                            f"{err}; retry {retry + 1} of {max_retries}",
                        ),
                        generation=body["metadata"].get("generation"),
                    )
                },
            )
            raise kopf.TemporaryError(f"{err}", delay=CLEANUP_BACKOFF.delay(retry + 1)) from err
        return Event(
            "BackupCleanupAbandoned",
            f"gave up deleting backups of {name} in bucket {bucket} after "
            f"{max_retries} attempts ({err}); remove them by hand",
            warning=True,
        )
    what = f"bucket {bucket}" if removed else f"backups of {name} in bucket {bucket}"
    return Event("BackupsDeleted", f"deleted {what}")
