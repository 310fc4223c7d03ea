"""The tenant's namespace and the limits on it: Namespace, ResourceQuota, LimitRange.

The Namespace is the one child without an ownerReference: garbage collection would
otherwise delete it (and every PVC in it) with the Tenant, which reclaimPolicy Retain
promises not to do. Its Pod Security labels (``restricted``) make the API server refuse
any pod in it that the builders did not harden.
"""

from __future__ import annotations

from tenantry_operator import model as m
from tenantry_operator.builders import common, render

COMPONENT = "namespace"


def namespace(model: m.TenantModel) -> common.Manifest:
    return render.one(
        "namespace/namespace.yaml.j2",
        namespace=model.namespace,
        labels=model.labels(COMPONENT),
    )


def resource_quota(model: m.TenantModel) -> common.Manifest:
    return render.one(
        "namespace/resourcequota.yaml.j2",
        metadata=common.metadata(model, name="quota", component=COMPONENT),
        quota=model.quota,
    )


def limit_range(model: m.TenantModel) -> common.Manifest:
    return render.one(
        "namespace/limitrange.yaml.j2",
        metadata=common.metadata(model, name="limits", component=COMPONENT),
    )


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return [namespace(model), resource_quota(model), limit_range(model)]
