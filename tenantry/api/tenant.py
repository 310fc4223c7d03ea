"""The ``Tenant`` custom resource (tenantry.io/v1alpha1): one customer's analytics stack.

A platform admin writes the spec; the operator owns the status. Fields a plan preset
fills in (shards, replicas, sizes, retention) are optional here on purpose: the CRD
must not default them, or the operator could not tell "unset, use the plan" from an
explicit choice.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from tenantry.api.common import (
    Condition,
    CRDModel,
    Resources,
    Storage,
    cel,
    empty_dict,
    k8s_extra,
)


class Plan(StrEnum):
    """Size presets: quotas and default sizes; explicit spec fields override them."""

    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"


class ReclaimPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class ScaleInPolicy(StrEnum):
    REFUSE = "Refuse"
    ALLOW_DATA_LOSS = "AllowDataLoss"


CLICKHOUSE_VERSION_PATTERN = r"^[0-9]{2}\.[0-9]{1,2}(\.[0-9]{1,3}){0,2}$"
# Five-field cron, or one of the @macros Kubernetes CronJobs accept.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    r"(\S+\s+){4}\S+)$"
)
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
SETTING_NAME_RULE = "self.all(k, k.matches('^[a-z][a-z0-9_]*$'))"


class ClickHouseSpec(CRDModel):
    """The sharded ClickHouse cluster: shards x replicas hosts."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "!has(self.replicas) || self.replicas == 1 || !has(self.shards) || "
                    "self.shards * self.replicas <= 64",
                    "shards x replicas must not exceed 64 hosts per tenant",
                ),
            ]
        )
    )

    version: Annotated[str, Field(pattern=CLICKHOUSE_VERSION_PATTERN)] = "25.3"
    """ClickHouse server version (image tag), e.g. "25.3" or "24.8.6". Changing it rolls
    the hosts one at a time."""
    shards: Annotated[int, Field(ge=1, le=64)] | None = None
    """Number of shards (>= 1). Unset means the plan's default. Scaling in is refused
    unless scaleInPolicy is AllowDataLoss."""
    replicas: Annotated[int, Field(ge=1, le=5)] | None = None
    """Replicas per shard, 1 to 5. More than one needs ClickHouse Keeper, which the
    operator then runs with 3 nodes. Unset means the plan's default."""
    resources: Resources | None = None
    """CPU and memory per ClickHouse host."""
    storage: Storage | None = None
    """Data volume per ClickHouse host."""
    settings: Annotated[
        dict[str, str],
        Field(
            default_factory=empty_dict,
            max_length=100,
            json_schema_extra=k8s_extra(
                validations=[
                    cel(
                        SETTING_NAME_RULE,
                        "settings keys must be ClickHouse setting names: lower case letters, "
                        "digits and '_', starting with a letter",
                    )
                ]
            ),
        ),
    ]
    """Server-level settings written into each host's config (name -> value),
    e.g. max_concurrent_queries: "200". Changing them rolls the hosts."""
    scale_in_policy: ScaleInPolicy = ScaleInPolicy.REFUSE
    """Refuse (default) keeps shards/replicas from being removed, since that drops their
    data; AllowDataLoss lets the operator remove them."""


class KeeperSpec(CRDModel):
    """ClickHouse Keeper, the coordination service replicated tables need."""

    replicas: (
        Annotated[
            int,
            Field(
                json_schema_extra={"enum": [1, 3, 5]},
            ),
        ]
        | None
    ) = None
    """Keeper nodes: 1, 3 or 5 (an odd number keeps a quorum). Unset means 3 when
    ClickHouse replicas > 1, otherwise none is run."""
    resources: Resources | None = None
    """CPU and memory per Keeper node."""
    storage: Storage | None = None
    """Log and snapshot volume per Keeper node."""


class RedisSpec(CRDModel):
    """The tenant's Redis: ingestion buffer (streams) and dashboard query cache."""

    version: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")] = "7.2"
    """Redis server version (image tag)."""
    resources: Resources | None = None
    """CPU and memory of the Redis pod."""
    storage: Storage | None = None
    """Append-only file volume, so buffered events survive a restart."""


class AutoscalingSpec(CRDModel):
    """Horizontal autoscaling of the ingestion pods on CPU."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "self.minReplicas <= self.maxReplicas",
                    "minReplicas must be less than or equal to maxReplicas",
                    field_path=".minReplicas",
                ),
            ]
        )
    )

    enabled: bool = False
    """Run a HorizontalPodAutoscaler for the ingestion Deployment."""
    min_replicas: Annotated[int, Field(ge=1, le=100)] = 1
    """Fewest ingestion pods (1 to 100)."""
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 4
    """Most ingestion pods (1 to 100, at least minReplicas)."""
    target_cpu_utilization_percentage: Annotated[int, Field(ge=10, le=100)] = 70
    """Average CPU utilisation (10 to 100 percent) the autoscaler aims for."""


class IngestionSpec(CRDModel):
    """The ingestion pods that accept events over HTTP and batch them into ClickHouse."""

    replicas: Annotated[int, Field(ge=0, le=100)] | None = None
    """Pods when autoscaling is off (0 to 100). Unset means the plan's default."""
    autoscaling: AutoscalingSpec | None = None
    """CPU-based autoscaling; replaces replicas when enabled."""
    resources: Resources | None = None
    """CPU and memory per ingestion pod."""


class BackupSpec(CRDModel):
    """Scheduled ClickHouse backups to S3."""

    schedule: Annotated[str, Field(pattern=CRON_PATTERN, max_length=100)] = "0 3 * * *"
    """Cron schedule (five fields, UTC) or a macro such as @daily."""
    retention: Annotated[int, Field(ge=1, le=365)] = 7
    """How many backups to keep (1 to 365)."""
    bucket: Annotated[str, Field(pattern=BUCKET_PATTERN)]
    """S3 bucket name (3 to 63 lower-case letters, digits, '.' or '-'). Created by the
    operator if missing."""
    prefix: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9!_.*'()/-]*$")] = ""
    """Key prefix inside the bucket; the tenant name is appended."""


class TenantSpec(CRDModel):
    """What a platform admin asks for: one isolated analytics stack."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "!has(self.ingestion) || !has(self.ingestion.autoscaling) || "
                    "!self.ingestion.autoscaling.enabled || !has(self.ingestion.replicas)",
                    "set either ingestion.replicas or ingestion.autoscaling.enabled, not both",
                    field_path=".ingestion.replicas",
                ),
            ]
        )
    )

    plan: Plan = Plan.STARTER
    """Size preset: starter, growth or enterprise. It sets quotas and default sizes;
    explicit fields override it."""
    clickhouse: ClickHouseSpec = Field(default_factory=ClickHouseSpec)
    """The ClickHouse cluster."""
    keeper: KeeperSpec | None = None
    """ClickHouse Keeper (needed when replicas > 1)."""
    redis: RedisSpec | None = None
    """Redis for buffering and caching."""
    ingestion: IngestionSpec | None = None
    """Ingestion pods."""
    retention_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    """Days events are kept (TTL), 1 to 3650. Unset means the plan's default."""
    backup: BackupSpec | None = None
    """S3 backups; unset means no backups."""
    suspend: bool = False
    """Scale every workload to zero, keeping volumes and data; false resumes."""
    reclaim_policy: ReclaimPolicy = ReclaimPolicy.RETAIN
    """On delete: Retain (default) keeps volumes and the backup bucket; Delete removes
    them."""


class ComponentStatus(CRDModel):
    """Readiness of one component."""

    ready: int = 0
    """Pods ready."""
    total: int = 0
    """Pods desired."""


class SchemaStatus(CRDModel):
    """The events schema as last provisioned in the tenant's ClickHouse."""

    database: str
    """Database holding the events table."""
    retention_days: int
    """TTL of the events table, in days."""
    shards: int
    """Shards the schema was provisioned for."""
    replicas: int
    """Replicas per shard the schema was provisioned for."""
    hosts: list[str] = Field(default_factory=list)
    """Hosts that have the schema."""


class TenantStatus(CRDModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = None
    """The .metadata.generation last reconciled."""
    phase: str | None = None
    """Summary: Pending, Provisioning, Ready, Degraded, Suspended or Deleting."""
    conditions: Annotated[
        list[Condition],
        Field(
            default_factory=list,
            json_schema_extra=k8s_extra(list_type="map", list_map_keys=["type"]),
        ),
    ]
    """Ready, Progressing, Degraded and one per component."""
    namespace: str | None = None
    """The namespace that holds the stack."""
    shards: int | None = None
    """Shards currently configured."""
    replicas: int | None = None
    """Replicas per shard currently configured."""
    hosts_ready: int | None = None
    """ClickHouse hosts Ready."""
    hosts_total: int | None = None
    """ClickHouse hosts desired."""
    hosts: str | None = None
    """hostsReady/hostsTotal, for printing."""
    endpoints: dict[str, str] = Field(default_factory=empty_dict)
    """In-cluster addresses: clickhouse, ingestion, redis."""
    schema_: SchemaStatus | None = Field(default=None, alias="schema")
    """The provisioned events schema (database, retention, hosts)."""


TENANT_NAME_RULE = cel(
    "self.metadata.name.size() <= 50 && "
    "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
    "metadata.name must be a DNS label of at most 50 characters (lower-case letters, "
    "digits and '-'): it becomes the namespace tenant-<name>",
    reason="FieldValueInvalid",
)
