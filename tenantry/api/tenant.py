"""The ``Tenant`` custom resource (tenantry.io/v1alpha1): one customer's analytics stack.

A platform admin writes the spec; the operator owns the status. Fields a plan preset
fills in (shards, replicas, sizes, retention) are optional here on purpose: the CRD
must not default them, or the operator could not tell "unset, use the plan" from an
explicit choice.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from tenantry.api import cron, quantity, server_settings
from tenantry.api.common import (
    Condition,
    CRDModel,
    Resources,
    Storage,
    cel,
    cel_string,
    empty_dict,
    k8s_extra,
)
from tenantry.api.plans import PRESETS
from tenantry.api.plans import Plan as Plan  # re-exported: part of the Tenant API


class ReclaimPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class ScaleInPolicy(StrEnum):
    REFUSE = "Refuse"
    ALLOW_DATA_LOSS = "AllowDataLoss"


class Durability(StrEnum):
    """What an ingestion ``202`` promises: when Redis makes an appended batch durable
    (its ``appendfsync``). See ``RedisSpec.durability``."""

    EVERY_SECOND = "EverySecond"
    ALWAYS = "Always"

    @property
    def appendfsync(self) -> str:
        """The redis-server setting of this level."""
        return {Durability.EVERY_SECOND: "everysec", Durability.ALWAYS: "always"}[self]


CLICKHOUSE_VERSION_PATTERN = r"^[0-9]{2}\.[0-9]{1,2}(\.[0-9]{1,3}){0,2}$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


def _settings_rules() -> list[dict[str, str]]:
    """CEL of ``server_settings``: only allowed keys, each value of its type."""
    names = "[" + ", ".join(cel_string(n) for n in server_settings.ALLOWED) + "]"
    rules = [
        cel(
            f"self.all(k, k in {names})",
            "only the ClickHouse server settings listed in the field's description may be "
            f"set ({server_settings.OWNED})",
            message_expression=(
                "'setting ' + self.filter(k, !(k in "
                + names
                + "))[0] + "
                + cel_string(
                    " cannot be set: only the server settings listed in "
                    "`kubectl explain tenant.spec.clickhouse.settings` may be ("
                    + server_settings.OWNED
                    + ")"
                )
            ),
        )
    ]
    for name, setting in server_settings.ALLOWED.items():
        value = f"self[{cel_string(name)}]"
        if setting.kind == "text":
            ok = f"{value}.matches({cel_string(setting.pattern)})"
        elif setting.kind == "ratio":
            pattern = cel_string(server_settings.RATIO_PATTERN)
            ok = f"{value}.matches({pattern}) && double({value}) > 0.0 && double({value}) <= 1.0"
        else:
            pattern = cel_string(server_settings.WHOLE_PATTERN)
            ok = (
                f"{value}.matches({pattern}) && int({value}) >= {setting.low} && "
                f"int({value}) <= {setting.high}"
            )
        rules.append(
            cel(
                f"!({cel_string(name)} in self) || ({ok})",
                f"setting {name} must be {setting.describe()}",
            )
        )
    return rules


MAX_HOSTS = 64
"""ClickHouse hosts (shards x replicas) of one tenant, counted on the effective values:
the plan's preset where the spec leaves shards or replicas unset."""


class ClickHouseSpec(CRDModel):
    """The sharded ClickHouse cluster: shards x replicas hosts."""

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
        dict[str, Annotated[str, Field(max_length=100)]],
        Field(
            default_factory=empty_dict,
            max_length=100,
            description=server_settings.description(),
            json_schema_extra=k8s_extra(validations=_settings_rules()),
        ),
        AfterValidator(server_settings.check),
    ]
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
    """Keeper nodes: 1, 3 or 5 (an odd number keeps a quorum); unset means 3. Keeper runs
    only when ClickHouse replicas > 1 (replicated tables need it); otherwise none is run,
    whatever this says."""
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
    durability: Durability = Durability.EVERY_SECOND
    """What an ingestion 202 promises. Ingestion answers 202 once the batch is in this
    Redis's append-only file (AOF); this sets when Redis fsyncs that file (its
    appendfsync), i.e. what a failure can take from batches already answered 202 and
    not yet written to ClickHouse. EverySecond (default; appendfsync everysec): a kill
    of the Redis process (SIGKILL, OOM kill) loses nothing, since the AOF was written
    to the kernel's page cache before the answer, except when an fsync takes over a
    second (a saturated disk): Redis then holds writes back, up to 2 s, and a kill
    loses those. A node crash or power loss loses what was answered since the last
    fsync: about the last second of events, up to 2 s on a slow disk (and batches
    written to ClickHouse in that second may be written again). Always
    (appendfsync always): Redis fsyncs before it answers, so a 202 means the batch is
    on the volume, and neither a process kill nor a node crash loses an acknowledged
    batch; it costs an fsync per write, which lowers throughput and raises the 202's
    latency (bench/README.md). At both levels, losing the volume itself (disk failure,
    deleted PVC) loses every batch not yet written to ClickHouse: there is one Redis
    and no replica. Changing it restarts the Redis pod (ingestion answers 503 with
    Retry-After meanwhile; a graceful stop fsyncs, so nothing acknowledged is lost)."""


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

    schedule: Annotated[
        str,
        Field(
            max_length=100,
            json_schema_extra=k8s_extra(
                validations=[
                    cel("!self.contains('TZ=')", cron.TIME_ZONE_IN_SCHEDULE),
                    cel(
                        "self.contains('TZ=') || "
                        f"self.matches({cel_string(cron.SCHEDULE_PATTERN)})",
                        cron.FORM,
                        message_expression=f"{cel_string(cron.FORM + '; got ')} + self",
                    ),
                ]
            ),
        ),
        AfterValidator(cron.check),
    ] = "0 3 * * *"
    """Cron schedule (five fields: minute hour day-of-month month day-of-week) or a macro
    such as @daily, in timeZone. No TZ= or CRON_TZ= inside it."""
    time_zone: (
        Annotated[
            str,
            Field(
                max_length=64,
                pattern=cron.TIME_ZONE_PATTERN,
                json_schema_extra=k8s_extra(
                    validations=[
                        cel(
                            "self.lowerAscii() != 'local'",
                            'timeZone must be an IANA time zone such as "Europe/Paris", not Local',
                        )
                    ]
                ),
            ),
            AfterValidator(cron.check_time_zone),
        ]
        | None
    ) = None
    """IANA time zone of the schedule, e.g. "Europe/Paris". Unset means UTC."""
    retention: Annotated[int, Field(ge=1, le=365)] = 7
    """How many backups to keep (1 to 365)."""
    bucket: Annotated[str, Field(pattern=BUCKET_PATTERN)]
    """S3 bucket name (3 to 63 lower-case letters, digits, '.' or '-'). Created by the
    operator if missing."""
    prefix: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9!_.*'()/-]*$")] = ""
    """Key prefix inside the bucket; the tenant name is appended."""
    delete_with_tenant: bool = False
    """Delete the tenant's backups (and its own bucket) when the Tenant is deleted with
    reclaimPolicy Delete. False: the backups stay, so a deleted tenant can be restored
    (a Restore naming it as source.tenant); they are then removed only by hand."""


# -- Rules on the whole spec, from the plans' table ------------------------------------
# What an unset size or resource means depends on the plan, so these rules see the
# whole spec: a value above the plan's quota for the whole tenant can never be
# scheduled, and a volume must not shrink nor change class, whether the field changes,
# is removed (the plan's default then applies) or the plan changes.
COMPONENTS = (("clickhouse", "ClickHouse"), ("keeper", "Keeper"), ("redis", "Redis"))
_RESOURCE_COMPONENTS = (*COMPONENTS, ("ingestion", "ingestion"))
_QUOTA = {
    "cpu": ("CPU", "quota_cpu", quantity.CPU_PATTERN),
    "memory": ("memory", "quota_memory", quantity.BYTES_PATTERN),
    "storage": ("storage", "quota_storage", quantity.BYTES_PATTERN),
}


def _plan(obj: str) -> str:
    return f"(has({obj}.plan) ? {obj}.plan : {cel_string(Plan.STARTER.value)})"


def _by_plan(
    values: dict[Plan, str], obj: str, *, literal: Callable[[str], str] = cel_string
) -> str:
    """CEL choosing ``values[plan]`` by the plan of ``obj`` (self or oldSelf); ``literal``
    writes a value as CEL (a string by default)."""
    expr = literal(values[Plan.STARTER])
    for plan in (Plan.ENTERPRISE, Plan.GROWTH):
        expr = f"{_plan(obj)} == {cel_string(plan.value)} ? {literal(values[plan])} : {expr}"
    return f"({expr})"


def _present(obj: str, path: str) -> str:
    parts = path.split(".")
    return " && ".join(f"has({obj}.{'.'.join(parts[: i + 1])})" for i in range(len(parts)))


def _quota_rule(path: str, resource: str) -> dict[str, str]:
    what, attr, pattern = _QUOTA[resource]
    quota = _by_plan({p: getattr(PRESETS[p], attr) for p in Plan}, "self")
    listed = ", ".join(f"{p.value} {getattr(PRESETS[p], attr)}" for p in Plan)
    value = f"self.{path}"
    return cel(
        f"!({_present('self', path)}) || !{value}.matches({cel_string(pattern)}) || "
        f"quantity({value}).compareTo(quantity({quota})) <= 0",
        f"{path} must fit in the plan's {what} quota for the whole tenant ({listed})",
        message_expression=(
            f"{cel_string(path + ' is ')} + {value} + {cel_string(', more than the ')} + "
            f"{_plan('self')} + {cel_string(f' plan allows for the whole tenant ({what} quota ')}"
            f" + {quota} + {cel_string('): lower it or choose a larger plan')}"
        ),
        field_path=f".{path}",
    )


def _size(obj: str, component: str) -> str:
    path = f"{component}.storage.size"
    defaults = {p: getattr(PRESETS[p], component).storage for p in Plan}
    return f"({_present(obj, path)} ? {obj}.{path} : {_by_plan(defaults, obj)})"


def _shrink_rule(component: str, label: str) -> dict[str, str]:
    new, old = _size("self", component), _size("oldSelf", component)
    path = f"spec.{component}.storage.size"
    unset = f"({_present('self', f'{component}.storage.size')} ? '' : ' (the plan default)')"
    parts = [
        cel_string(f"size cannot shrink: the {label} volumes are "),
        old,
        cel_string(" and this change makes them "),
        new,
        unset,
        cel_string(f"; volumes can only be expanded: set {path} to at least "),
        old,
    ]
    return cel(
        f"!isQuantity({new}) || !isQuantity({old}) || "
        f"quantity({new}).compareTo(quantity({old})) >= 0",
        f"size cannot shrink: volumes can only be expanded, and removing {path} or moving "
        "to a smaller plan changes it too (unset means the plan's default)",
        message_expression=" + ".join(parts),
        field_path=f".{component}.storage.size",
    )


def _class(obj: str, component: str) -> str:
    path = f"{component}.storage.storageClassName"
    return f"({_present(obj, path)} ? {obj}.{path} : '')"


def _class_rule(component: str, label: str) -> dict[str, str]:
    return cel(
        f"{_class('self', component)} == {_class('oldSelf', component)}",
        "storageClassName is immutable once set: existing volumes cannot move to another "
        f"class (unset means the cluster default; the {label} volumes keep the class they "
        "were created with)",
        field_path=f".{component}.storage.storageClassName",
    )


def _effective(field: str) -> str:
    """CEL for the effective ``clickhouse.<field>`` of ``self``: the spec's, else the
    plan's preset (what the operator builds)."""
    path = f"clickhouse.{field}"
    preset = {p: getattr(PRESETS[p], field) for p in Plan}
    by_plan = _by_plan({p: str(v) for p, v in preset.items()}, "self", literal=str)
    return f"({_present('self', path)} ? self.{path} : {by_plan})"


def _hosts_rule() -> dict[str, str]:
    """shards x replicas <= MAX_HOSTS on the effective values: a spec that sets only one
    of them cannot pass the cap through the plan's preset of the other.

    The message says which value came from the plan without printing the numbers: CEL's
    ``string(int)`` makes the API server's cost estimate refuse the whole CRD."""
    shards, replicas = _effective("shards"), _effective("replicas")
    listed = ", ".join(f"{p.value} {PRESETS[p].shards}x{PRESETS[p].replicas}" for p in Plan)
    cap = f"{MAX_HOSTS} hosts per tenant"

    def preset_of(unset: str, other: str) -> str:
        return (
            f"{cel_string(f'clickhouse.{other} times the ')} + {_plan('self')} + "
            f"{cel_string(f' plan preset of clickhouse.{unset} exceeds {cap}: lower ')} + "
            f"{cel_string(f'clickhouse.{other} or set clickhouse.{unset}')}"
        )

    message = (
        f"{_present('self', 'clickhouse.shards')} && {_present('self', 'clickhouse.replicas')}"
        f" ? {cel_string(f'clickhouse shards x replicas exceeds {cap}')}"
        f" : {_present('self', 'clickhouse.shards')} ? {preset_of('replicas', 'shards')}"
        f" : {preset_of('shards', 'replicas')}"
    )
    return cel(
        f"{shards} * {replicas} <= {MAX_HOSTS}",
        f"clickhouse shards x replicas must not exceed {cap}, an unset value being the "
        f"plan's preset ({listed})",
        message_expression=message,
        field_path=".clickhouse",
    )


def _spec_rules() -> list[dict[str, str]]:
    rules = [
        _hosts_rule(),
        cel(
            "!has(self.ingestion) || !has(self.ingestion.autoscaling) || "
            "!self.ingestion.autoscaling.enabled || !has(self.ingestion.replicas)",
            "set either ingestion.replicas or ingestion.autoscaling.enabled, not both",
            field_path=".ingestion.replicas",
        ),
    ]
    for component, _ in _RESOURCE_COMPONENTS:
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                rules.append(_quota_rule(f"{component}.resources.{kind}.{resource}", resource))
    for component, _ in COMPONENTS:
        rules.append(_quota_rule(f"{component}.storage.size", "storage"))
    for component, label in COMPONENTS:
        rules.append(_shrink_rule(component, label))
        rules.append(_class_rule(component, label))
    return rules


class TenantSpec(CRDModel):
    """What a platform admin asks for: one isolated analytics stack."""

    model_config = ConfigDict(json_schema_extra=k8s_extra(validations=_spec_rules()))

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

    @property
    def shards(self) -> int:
        """The effective shard count: the spec's, else the plan's preset."""
        return self.clickhouse.shards or PRESETS[self.plan].shards

    @property
    def replicas(self) -> int:
        """The effective replicas per shard: the spec's, else the plan's preset."""
        return self.clickhouse.replicas or PRESETS[self.plan].replicas

    @model_validator(mode="after")
    def _hosts_fit(self) -> TenantSpec:
        # The CRD's rule of the same name (_hosts_rule), for specs built in Python.
        if self.shards * self.replicas > MAX_HOSTS:
            raise ValueError(
                f"clickhouse shards x replicas is {self.shards} x {self.replicas} = "
                f"{self.shards * self.replicas} hosts (an unset value is the {self.plan.value} "
                f"plan's preset); a tenant has at most {MAX_HOSTS} hosts"
            )
        return self


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


class BackupStatus(CRDModel):
    """The tenant's backups as the operator last read them from S3 (their manifests)
    and from the backup CronJob's Jobs."""

    count: int = 0
    """Complete backups kept in S3 (a backup is complete once its manifest is written)."""
    last_backup: str | None = None
    """Name of the newest complete backup (its start time, UTC)."""
    last_success_time: str | None = None
    """When the newest complete backup finished (RFC 3339, UTC)."""
    size_bytes: int | None = None
    """Bytes the newest complete backup holds, all shards."""
    rows: int | None = None
    """Rows the newest complete backup holds, all shards."""
    shards: int | None = None
    """Shards of the layout the newest backup was taken from."""
    replicas: int | None = None
    """Replicas per shard of that layout."""
    schema_version: int | None = None
    """Schema version of the data in the newest backup."""
    last_error: str | None = None
    """Why the latest backup Job failed, until a later one succeeds."""
    observed_job_success: str | None = None
    """The CronJob's lastSuccessfulTime when S3 was last read: S3 is read again only
    when it changes."""


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
    backup: BackupStatus | None = None
    """Backups: the newest complete one, how many are kept, the last error."""


TENANT_NAME_RULE = cel(
    "self.metadata.name.size() <= 50 && "
    "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
    "metadata.name must be a DNS label of at most 50 characters (lower-case letters, "
    "digits and '-'): it becomes the namespace tenant-<name>",
    reason="FieldValueInvalid",
)
