"""Ingestion: the HTTP pods that accept events and batch them into ClickHouse via Redis.

With autoscaling the HorizontalPodAutoscaler owns the replica count, so the Deployment
leaves ``spec.replicas`` out (server-side apply would otherwise reset it on every
reconcile); suspend is the exception: it pins 0 and removes the HPA, which would
otherwise scale the Deployment back up.

The environment below is the contract with the ``ingest`` entry point: where Redis and
ClickHouse are, and the passwords (from the Secrets, never literal).
"""

from __future__ import annotations

from typing import Any

from tenantry import contract
from tenantry_operator import model as m
from tenantry_operator.builders import clickhouse, common, redis, render

COMPONENT = "ingestion"
SERVICE = "ingestion"  # the Service producers post to (reported in the Tenant status)
PORT = 8080
METRICS_PORT = 9464  # internal: /metrics, never in the Service nor open to producers


def desired_replicas(model: m.TenantModel) -> int | None:
    """spec.replicas of the Deployment: None when the HPA owns it."""
    if model.suspend:
        return 0
    if model.ingestion.autoscaling is not None:
        return None
    return model.ingestion.replicas


def _min_pods(model: m.TenantModel) -> int:
    if model.suspend:
        return 0
    scaling = model.ingestion.autoscaling
    return scaling.min_replicas if scaling is not None else model.ingestion.replicas


def args(model: m.TenantModel) -> list[str]:
    """The container's arguments: while a Restore runs into the tenant, the pods accept
    events into Redis but run no writer (the restore must not race inserts)."""
    if model.restore_hold is not None:
        return ["ingest", contract.INGEST_NO_WRITER_FLAG]
    return ["ingest"]


def env(model: m.TenantModel) -> list[dict[str, Any]]:
    return [
        {"name": "TENANTRY_TENANT", "value": model.name},
        {"name": "TENANTRY_LISTEN", "value": f"0.0.0.0:{PORT}"},
        {"name": "TENANTRY_METRICS_LISTEN", "value": f"0.0.0.0:{METRICS_PORT}"},
        {"name": "TENANTRY_REDIS_HOST", "value": common.service_host(model, redis.SERVICE)},
        {"name": "TENANTRY_REDIS_PORT", "value": str(redis.PORT)},
        common.secret_env(
            "TENANTRY_REDIS_PASSWORD", secret=contract.REDIS_SECRET, key=contract.REDIS_PASSWORD_KEY
        ),
        {
            "name": "TENANTRY_CLICKHOUSE_URL",
            "value": f"http://{common.service_host(model, clickhouse.SERVICE)}:"
            f"{clickhouse.HTTP_PORT}",
        },
        {"name": "TENANTRY_CLICKHOUSE_USER", "value": "writer"},
        common.secret_env(
            "TENANTRY_CLICKHOUSE_PASSWORD",
            secret=contract.CLICKHOUSE_SECRET,
            key=contract.CLICKHOUSE_PASSWORD_KEYS["writer"],
        ),
        {"name": "TENANTRY_CLICKHOUSE_CLUSTER", "value": model.cluster_name},
        {"name": "TENANTRY_RETENTION_DAYS", "value": str(model.retention_days)},
        {"name": "TENANTRY_CLICKHOUSE_DATABASE", "value": model.database},
        *_controlplane_env(model),
    ]


def _controlplane_env(model: m.TenantModel) -> list[dict[str, Any]]:
    """API keys are checked against the control plane with an internal token, which the
    operator copies into the tenant's Secret ``ingestion-credentials``."""
    if not model.controlplane_url:
        return []
    org = [{"name": "TENANTRY_ORG_ID", "value": model.org_id}] if model.org_id else []
    return [
        *org,
        {"name": "TENANTRY_CONTROLPLANE_URL", "value": model.controlplane_url},
        common.secret_env(
            "TENANTRY_INTERNAL_TOKEN",
            secret=contract.INGESTION_SECRET,
            key=contract.INGESTION_TOKEN_KEY,
        ),
    ]


def deployments(model: m.TenantModel) -> list[common.Manifest]:
    ing = model.ingestion
    selector = common.selector(model, COMPONENT)
    context: dict[str, Any] = {
        "metadata": common.metadata(model, name="ingestion", component=COMPONENT),
        "replicas": desired_replicas(model),
        "selector": selector,
        "pod_labels": common.labels(model, COMPONENT),
        "pod_security": common.pod_security_context(common.UID_TENANTRY),
        "affinity": common.spread(selector),
        "image": ing.image,
        "args": args(model),
        "env": env(model),
        "resources": common.resources(ing.resources),
        "container_security": common.container_security_context(),
        "port": PORT,
        "metrics_port": METRICS_PORT,
    }
    return [render.one("ingestion/deployment.yaml.j2", **context)]


def services(model: m.TenantModel) -> list[common.Manifest]:
    return [
        render.one(
            "ingestion/service.yaml.j2",
            metadata=common.metadata(model, name=SERVICE, component=COMPONENT),
            selector=common.selector(model, COMPONENT),
            port=PORT,
        )
    ]


def horizontal_pod_autoscalers(model: m.TenantModel) -> list[common.Manifest]:
    if model.suspend or model.ingestion.autoscaling is None:
        return []
    return [
        render.one(
            "ingestion/horizontalpodautoscaler.yaml.j2",
            metadata=common.metadata(model, name="ingestion", component=COMPONENT),
            autoscaling=model.ingestion.autoscaling,
        )
    ]


def pod_disruption_budgets(model: m.TenantModel) -> list[common.Manifest]:
    # minAvailable 1 with a single pod would block every node drain.
    if _min_pods(model) <= 1:
        return []
    return [
        render.one(
            "ingestion/poddisruptionbudget.yaml.j2",
            metadata=common.metadata(model, name="ingestion", component=COMPONENT),
            selector=common.selector(model, COMPONENT),
        )
    ]


def objects(model: m.TenantModel) -> list[common.Manifest]:
    return [
        *services(model),
        *deployments(model),
        *horizontal_pod_autoscalers(model),
        *pod_disruption_budgets(model),
    ]
