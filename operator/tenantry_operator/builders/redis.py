"""Redis: the ingestion buffer (streams) and the dashboard query cache.

One pod is enough (it is a buffer and a cache, not the system of record); an
append-only file on a PersistentVolume keeps buffered events across restarts, and
suspend scales it to zero without losing them. When that file is fsynced is the
tenant's durability level (``spec.redis.durability``, rendered as ``--appendfsync``):
it decides what an ingestion 202 promises (README, "What a 202 promises").
"""

from __future__ import annotations

from typing import Any

from tenantry import contract
from tenantry_operator import model as m
from tenantry_operator.builders import common, render

COMPONENT = "redis"
SERVICE = "redis"
PORT = 6379
METRICS_PORT = 9121  # the exporter sidecar's (ingestion/redis_exporter.py)
# The sidecar's own, not the tenant's Redis sizing: one INFO per scrape. Counted in the
# plan's quota like every container (checks.py).
EXPORTER_RESOURCES = m.Resources(
    cpu_request="10m", cpu_limit="100m", memory_request="64Mi", memory_limit="96Mi"
)


def services(model: m.TenantModel) -> list[common.Manifest]:
    return [
        render.one(
            "redis/service.yaml.j2",
            metadata=common.metadata(model, name=SERVICE, component=COMPONENT),
            selector=common.selector(model, COMPONENT),
        )
    ]


def statefulsets(model: m.TenantModel) -> list[common.Manifest]:
    redis = model.redis
    context: dict[str, Any] = {
        "metadata": common.metadata(model, name="redis", component=COMPONENT),
        "replicas": common.replicas(model, 1),
        "pvc_retention": common.pvc_retention(model),
        "selector": common.selector(model, COMPONENT),
        "pod_labels": common.labels(model, COMPONENT),
        "pod_security": common.pod_security_context(common.UID_REDIS),
        "image": redis.image,
        "appendfsync": redis.appendfsync,
        "password_env": common.secret_env(
            "REDIS_PASSWORD", secret=contract.REDIS_SECRET, key=contract.REDIS_PASSWORD_KEY
        ),
        "cli_auth_env": common.secret_env(
            "REDISCLI_AUTH", secret=contract.REDIS_SECRET, key=contract.REDIS_PASSWORD_KEY
        ),
        "resources": common.resources(redis.resources),
        "port": PORT,
        "metrics_port": METRICS_PORT,
        "metrics_listen": f"0.0.0.0:{METRICS_PORT}",
        "exporter_image": redis.exporter_image,
        "exporter_password_env": common.secret_env(
            "TENANTRY_REDIS_PASSWORD", secret=contract.REDIS_SECRET, key=contract.REDIS_PASSWORD_KEY
        ),
        "exporter_resources": common.resources(EXPORTER_RESOURCES),
        "container_security": common.container_security_context(),
        "volume_claim": common.volume_claim(
            model, name="data", component=COMPONENT, volume=redis.volume
        ),
    }
    return [render.one("redis/statefulset.yaml.j2", **context)]


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return [*services(model), *statefulsets(model)]
