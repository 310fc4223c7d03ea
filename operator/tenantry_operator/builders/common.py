"""Pieces every component's objects share: metadata, owner references, pod security.

They are computed here, in Python, and handed to the templates as whole values
(rendered with ``tojson``), so the rules "every namespaced object is owned by the
Tenant", "every pod is Pod Security *restricted*" and "every container has requests
and limits" live in one place instead of being retyped in each template.

The names of the Secrets and their keys (tenantry.contract) are a contract with the
apply step, which creates the Secrets once; builders only reference them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tenantry import contract
from tenantry_operator import model as m

# The Secrets' names and the keys others read are in tenantry.contract; these keys are
# the operator's own (the backup Secret it writes and the CronJob reads).
BACKUP_S3_KEYS = {"access_key_id": "access-key-id", "secret_access_key": "secret-access-key"}
# Optional key of the backup Secret: the S3 endpoint URL (AWS when absent).
BACKUP_S3_ENDPOINT_KEY = "endpoint"
BACKUP_S3_REGION_KEY = "region"

LABEL_SHARD = "tenantry.io/shard"
LABEL_REPLICA = "tenantry.io/replica"

# uid/gid the upstream images run as: clickhouse/clickhouse-server and -keeper use 101,
# the official redis image 999; the tenantry image has no fixed user, so we pick one.
UID_CLICKHOUSE = 101
UID_REDIS = 999
UID_TENANTRY = 10001

Manifest = dict[str, Any]


def owner_reference(model: m.TenantModel) -> dict[str, Any]:
    owner = model.owner
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def labels(
    model: m.TenantModel, component: str, *, extra: dict[str, str] | None = None
) -> dict[str, str]:
    return {**model.labels(component), **(extra or {})}


def selector(
    model: m.TenantModel, component: str, *, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The immutable subset of labels workloads select their pods by."""
    return {
        "app.kubernetes.io/instance": model.name,
        m.LABEL_COMPONENT: component,
        **(extra or {}),
    }


def metadata(
    model: m.TenantModel,
    *,
    name: str,
    component: str,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Metadata of a namespaced child: our labels and the Tenant as controller owner."""
    return {
        "name": name,
        "namespace": model.namespace,
        "labels": labels(model, component, extra=extra_labels),
        "ownerReferences": [owner_reference(model)],
    }


def resources(res: m.Resources) -> dict[str, Any]:
    # The model's strings are already canonical quantities: passed through untouched.
    return {
        "requests": {"cpu": res.cpu_request, "memory": res.memory_request},
        "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit},
    }


def pod_security_context(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(*, read_only_root: bool = True) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def volume_claim(
    model: m.TenantModel, *, name: str, component: str, volume: m.Volume
) -> dict[str, Any]:
    """A volumeClaimTemplate; its labels let apply/observe find the tenant's PVCs."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": volume.size}},
    }
    if volume.storage_class:
        spec["storageClassName"] = volume.storage_class
    return {"metadata": {"name": name, "labels": labels(model, component)}, "spec": spec}


def pvc_retention(model: m.TenantModel) -> dict[str, str]:
    """Scaling down (suspend) always keeps volumes; deleting only with reclaim Delete."""
    return {
        "whenDeleted": "Delete" if model.reclaim_delete else "Retain",
        "whenScaled": "Retain",
    }


def spread(match_labels: dict[str, str]) -> dict[str, Any]:
    """Preferred anti-affinity: pods matching these labels on different nodes and zones."""

    def term(weight: int, key: str) -> dict[str, Any]:
        return {
            "weight": weight,
            "podAffinityTerm": {
                "labelSelector": {"matchLabels": match_labels},
                "topologyKey": key,
            },
        }

    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                term(100, "kubernetes.io/hostname"),
                term(50, "topology.kubernetes.io/zone"),
            ]
        }
    }


def secret_env(name: str, *, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def digest(value: Any) -> str:
    """First 16 hex digits of the sha256 of a JSON-able value (stable across runs)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def replicas(model: m.TenantModel, wanted: int) -> int:
    return 0 if model.suspend else wanted


def service_host(model: m.TenantModel, service: str) -> str:
    return contract.service_host(model.namespace, service)
