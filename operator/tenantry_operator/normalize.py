"""normalize: CR (spec + metadata) + plan preset + operator settings -> TenantModel.

Pure. Explicit spec fields win over the plan's preset; anything left unset comes from
the preset. Keeper runs (3 nodes unless set) exactly when ClickHouse has replicas > 1:
only ReplicatedMergeTree needs it, since the schema's DDL runs on each host and never
ON CLUSTER (tenantry.clickhouse.schema), so N shards x 1 replica run without Keeper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantry import contract
from tenantry.api import API_VERSION, quantity
from tenantry.api.common import Resources as SpecResources
from tenantry.api.common import Storage as SpecStorage
from tenantry.api.tenant import Durability, ReclaimPolicy, ScaleInPolicy, TenantSpec
from tenantry_operator import model as m
from tenantry_operator.presets import PRESETS, Size


@dataclass(frozen=True)
class Images:
    """Image repositories; tags come from the spec's versions."""

    clickhouse: str = "clickhouse/clickhouse-server"
    keeper: str = "clickhouse/clickhouse-keeper"
    redis: str = "redis"
    ingestion: str = "tenantry:0.1.0"
    # The Redis metrics sidecar (`tenantry redis-exporter`); None: the ingestion image.
    redis_exporter: str | None = None


def namespace_of(name: str) -> str:
    return contract.tenant_namespace(name)


def _resources(spec: SpecResources | None, size: Size) -> m.Resources:
    """Explicit values win; the plan fills the rest, never so that a request exceeds its
    limit (Kubernetes refuses such a pod): an unset limit is at least the request set,
    an unset request at most the limit set."""
    req = spec.requests if spec and spec.requests else None
    lim = spec.limits if spec and spec.limits else None

    def pair(
        request: str | None, limit: str | None, plan_request: str, plan_limit: str
    ) -> tuple[str, str]:
        if request and not limit:
            limit = max(plan_limit, request, key=quantity.parse)
        elif limit and not request:
            request = min(plan_request, limit, key=quantity.parse)
        return request or plan_request, limit or plan_limit

    cpu_request, cpu_limit = pair(
        req.cpu if req else None, lim.cpu if lim else None, size.cpu_request, size.cpu_limit
    )
    memory_request, memory_limit = pair(
        req.memory if req else None,
        lim.memory if lim else None,
        size.memory_request,
        size.memory_limit,
    )
    return m.Resources(
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        memory_request=memory_request,
        memory_limit=memory_limit,
    )


def _volume(spec: SpecStorage | None, size: Size) -> m.Volume:
    return m.Volume(
        size=(spec.size if spec and spec.size else size.storage),
        storage_class=spec.storage_class_name if spec else None,
    )


def tenant_model(
    body: Mapping[str, Any],
    *,
    images: Images | None = None,
    platform_namespaces: tuple[str, ...] = (),
    monitoring_namespaces: tuple[str, ...] = (),
    controlplane_url: str | None = None,
) -> m.TenantModel:
    """The resolved model of a Tenant object (raises pydantic.ValidationError)."""
    images = images or Images()
    meta = body["metadata"]
    spec = TenantSpec.model_validate(dict(body.get("spec") or {}))
    preset = PRESETS[spec.plan]
    ch = spec.clickhouse
    replicas = spec.replicas  # the effective values: TenantSpec defines them, once
    keeper_spec = spec.keeper
    keeper_replicas = 0
    if replicas > 1:
        keeper_replicas = keeper_spec.replicas if keeper_spec and keeper_spec.replicas else 3
    ingestion = spec.ingestion
    autoscaling = None
    if ingestion and ingestion.autoscaling and ingestion.autoscaling.enabled:
        a = ingestion.autoscaling
        autoscaling = m.Autoscaling(
            a.min_replicas, a.max_replicas, a.target_cpu_utilization_percentage
        )
    ingestion_replicas = (
        ingestion.replicas
        if ingestion and ingestion.replicas is not None
        else preset.ingestion_replicas
    )
    redis_version = spec.redis.version if spec.redis else "7.2"
    backup = None
    if spec.backup:
        backup = m.Backup(
            schedule=spec.backup.schedule,
            retention=spec.backup.retention,
            bucket=spec.backup.bucket,
            prefix=spec.backup.prefix,
            time_zone=spec.backup.time_zone or "Etc/UTC",
            image=images.ingestion,  # the Tenantry image: `tenantry backup`
        )
    return m.TenantModel(
        name=meta["name"],
        namespace=namespace_of(meta["name"]),
        owner=m.Owner(API_VERSION, "Tenant", meta["name"], meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        plan=spec.plan.value,
        clickhouse=m.ClickHouse(
            version=ch.version,
            image=f"{images.clickhouse}:{ch.version}",
            shards=spec.shards,
            replicas=replicas,
            resources=_resources(ch.resources, preset.clickhouse),
            volume=_volume(ch.storage, preset.clickhouse),
            settings=tuple(sorted(ch.settings.items())),
            allow_scale_in=ch.scale_in_policy is ScaleInPolicy.ALLOW_DATA_LOSS,
            reader=preset.reader,
            writer=preset.writer,
        ),
        keeper=m.Keeper(
            replicas=keeper_replicas,
            image=f"{images.keeper}:{ch.version}",
            resources=_resources(keeper_spec.resources if keeper_spec else None, preset.keeper),
            volume=_volume(keeper_spec.storage if keeper_spec else None, preset.keeper),
        ),
        redis=m.Redis(
            image=f"{images.redis}:{redis_version}",
            resources=_resources(spec.redis.resources if spec.redis else None, preset.redis),
            volume=_volume(spec.redis.storage if spec.redis else None, preset.redis),
            appendfsync=(
                spec.redis.durability if spec.redis else Durability.EVERY_SECOND
            ).appendfsync,
            exporter_image=images.redis_exporter or images.ingestion,
        ),
        ingestion=m.Ingestion(
            image=images.ingestion,
            replicas=ingestion_replicas,
            autoscaling=autoscaling,
            resources=_resources(ingestion.resources if ingestion else None, preset.ingestion),
        ),
        retention_days=spec.retention_days or preset.retention_days,
        backup=backup,
        suspend=spec.suspend,
        reclaim_delete=spec.reclaim_policy is ReclaimPolicy.DELETE,
        quota=m.Quota(
            preset.quota_cpu,
            preset.quota_memory,
            preset.quota_storage,
            preset.quota_pods,
            preset.quota_pvcs,
        ),
        platform_namespaces=platform_namespaces,
        monitoring_namespaces=monitoring_namespaces,
        controlplane_url=controlplane_url,
        org_id=(meta.get("labels") or {}).get(contract.LABEL_ORG),
        restore_hold=(meta.get("annotations") or {}).get(contract.ANNOTATION_RESTORE_HOLD),
    )
