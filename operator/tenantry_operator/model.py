"""The normalized tenant: the one frozen, fully-resolved model every later step reads.

``normalize.tenant_model`` builds it from the CR (spec + plan preset + operator
settings). Builders, the rollout planner and status code take this model, never raw
dicts, so "what does this tenant want" is decided in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tenantry import contract
from tenantry.api.plans import ReaderLimits, WriterLimits

LABEL_COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "tenantry-operator"  # the value of contract.LABEL_MANAGED_BY on our objects
ANNOTATION_CONFIG_HASH = "tenantry.io/config-hash"
ANNOTATION_APPLIED_HASH = "tenantry.io/applied-hash"


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class Volume:
    size: str
    storage_class: str | None


@dataclass(frozen=True)
class Host:
    """One ClickHouse server: shard and replica are 0-based."""

    shard: int
    replica: int

    @property
    def name(self) -> str:
        return f"ch-s{self.shard}-r{self.replica}"


@dataclass(frozen=True)
class ClickHouse:
    version: str
    image: str
    shards: int
    replicas: int
    resources: Resources
    volume: Volume
    settings: tuple[tuple[str, str], ...]
    allow_scale_in: bool
    # The plan's limits of the ClickHouse users (profiles, constraints and quotas).
    reader: ReaderLimits
    writer: WriterLimits

    @property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(Host(s, r) for s in range(self.shards) for r in range(self.replicas))

    @property
    def clustered(self) -> bool:
        return self.shards > 1 or self.replicas > 1


@dataclass(frozen=True)
class Keeper:
    replicas: int  # 0: not run
    image: str
    resources: Resources
    volume: Volume


@dataclass(frozen=True)
class Redis:
    image: str
    resources: Resources
    volume: Volume
    appendfsync: str  # redis-server's setting, from the tenant's durability level
    exporter_image: str  # the metrics sidecar's (this project's image by default)


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    target_cpu: int


@dataclass(frozen=True)
class Ingestion:
    image: str
    replicas: int
    autoscaling: Autoscaling | None
    resources: Resources


@dataclass(frozen=True)
class Backup:
    schedule: str
    retention: int
    bucket: str
    prefix: str
    image: str
    time_zone: str = "Etc/UTC"


@dataclass(frozen=True)
class Quota:
    cpu: str
    memory: str
    storage: str
    pods: int
    pvcs: int


@dataclass(frozen=True)
class Owner:
    """What children need to point their ownerReferences at the Tenant."""

    api_version: str
    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class TenantModel:
    name: str
    namespace: str
    owner: Owner
    generation: int
    plan: str
    clickhouse: ClickHouse
    keeper: Keeper
    redis: Redis
    ingestion: Ingestion
    retention_days: int
    backup: Backup | None
    suspend: bool
    reclaim_delete: bool
    quota: Quota
    # Namespaces whose pods may reach the tenant (operator, control plane).
    platform_namespaces: tuple[str, ...] = field(default=())
    # Namespaces whose pods may scrape the tenant's metrics ports, and only those.
    monitoring_namespaces: tuple[str, ...] = field(default=())
    # Where ingestion pods validate API keys (None: the pods need TENANTRY_INGEST_KEYS).
    controlplane_url: str | None = None
    # The owning organisation (label set by the control plane), for usage reports.
    org_id: str | None = None
    # The Restore running into this tenant: its writers pause and backups are suspended.
    restore_hold: str | None = None

    @property
    def database(self) -> str:
        """The tenant's ClickHouse database (`tenantry.contract.tenant_database`)."""
        return contract.tenant_database(self.name)

    @property
    def cluster_name(self) -> str:
        """Name of the ClickHouse cluster in remote_servers."""
        return "tenant"

    def labels(self, component: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/instance": self.name,
            LABEL_COMPONENT: component,
            "app.kubernetes.io/part-of": "tenantry",
            contract.LABEL_MANAGED_BY: MANAGED_BY,
            contract.LABEL_TENANT: self.name,
        }
