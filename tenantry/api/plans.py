"""Plans: the sizes and quotas a plan gives a tenant unless its spec overrides them.

Part of the API, not only of the operator: what an unset field means depends on the
plan, so the CRD's rules that compare values across a change (a volume must not shrink
when a size is removed or the plan gets smaller) and that bound a value by the plan's
quota are generated from this table, as is the operator's own check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Plan(StrEnum):
    """Size presets: quotas and default sizes; explicit spec fields override them."""

    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class Size:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    storage: str


@dataclass(frozen=True)
class ReaderLimits:
    """What the tenant's ClickHouse ``reader`` (dashboards, the control plane) may use.

    The per-query limits are the reader's settings profile, pinned by constraints (a
    query may lower them, never raise them or turn them off with 0); the hourly ones are
    its quota. Rendered into users.xml by the operator's ClickHouse builder.
    """

    max_execution_time_s: int
    max_memory_usage_bytes: int
    max_rows_to_read: int
    max_result_rows: int
    queries_per_hour: int
    execution_time_per_hour_s: int


@dataclass(frozen=True)
class WriterLimits:
    """What the ingestion ``writer`` may use: per-insert limits (profile, pinned by
    constraints) and queries per minute (quota).

    The quota is a guard against a runaway client, not a plan's allowance: ingestion
    may run up to 100 pods (the CRD's bound), each inserting at most once a second, so
    12 000 a minute leaves room for every one of them twice over (retries, a client's
    first queries) on a single host."""

    max_execution_time_s: int
    max_memory_usage_bytes: int
    queries_per_minute: int


@dataclass(frozen=True)
class Preset:
    shards: int
    replicas: int
    retention_days: int
    clickhouse: Size
    keeper: Size
    redis: Size
    ingestion: Size
    ingestion_replicas: int
    # ResourceQuota of the tenant namespace.
    quota_cpu: str
    quota_memory: str
    quota_storage: str
    quota_pods: int
    quota_pvcs: int
    reader: ReaderLimits
    writer: WriterLimits


GiB = 1024**3
PRESETS: dict[Plan, Preset] = {
    Plan.STARTER: Preset(
        shards=1,
        replicas=1,
        retention_days=30,
        clickhouse=Size("500m", "2", "2Gi", "2Gi", "20Gi"),
        keeper=Size("100m", "500m", "256Mi", "256Mi", "2Gi"),
        redis=Size("100m", "500m", "256Mi", "256Mi", "2Gi"),
        ingestion=Size("100m", "500m", "128Mi", "256Mi", "0"),
        ingestion_replicas=1,
        quota_cpu="16",
        quota_memory="32Gi",
        quota_storage="200Gi",
        quota_pods=30,
        quota_pvcs=20,
        reader=ReaderLimits(
            max_execution_time_s=30,
            max_memory_usage_bytes=1 * GiB,
            max_rows_to_read=500_000_000,
            max_result_rows=100_000,
            queries_per_hour=10_000,
            execution_time_per_hour_s=1_800,
        ),
        writer=WriterLimits(
            max_execution_time_s=120, max_memory_usage_bytes=1 * GiB, queries_per_minute=12_000
        ),
    ),
    Plan.GROWTH: Preset(
        shards=2,
        replicas=2,
        retention_days=90,
        clickhouse=Size("2", "4", "8Gi", "8Gi", "200Gi"),
        keeper=Size("250m", "1", "512Mi", "512Mi", "5Gi"),
        redis=Size("250m", "1", "1Gi", "1Gi", "10Gi"),
        ingestion=Size("250m", "1", "256Mi", "512Mi", "0"),
        ingestion_replicas=2,
        quota_cpu="96",
        quota_memory="256Gi",
        quota_storage="4Ti",
        quota_pods=100,
        quota_pvcs=60,
        reader=ReaderLimits(
            max_execution_time_s=60,
            max_memory_usage_bytes=4 * GiB,
            max_rows_to_read=2_000_000_000,
            max_result_rows=500_000,
            queries_per_hour=50_000,
            execution_time_per_hour_s=7_200,
        ),
        writer=WriterLimits(
            max_execution_time_s=120, max_memory_usage_bytes=2 * GiB, queries_per_minute=12_000
        ),
    ),
    Plan.ENTERPRISE: Preset(
        shards=4,
        replicas=3,
        retention_days=365,
        clickhouse=Size("4", "8", "32Gi", "32Gi", "1Ti"),
        keeper=Size("500m", "2", "1Gi", "1Gi", "10Gi"),
        redis=Size("500m", "2", "4Gi", "4Gi", "50Gi"),
        ingestion=Size("500m", "2", "512Mi", "1Gi", "0"),
        ingestion_replicas=3,
        quota_cpu="512",
        quota_memory="2Ti",
        quota_storage="64Ti",
        quota_pods=400,
        quota_pvcs=300,
        reader=ReaderLimits(
            max_execution_time_s=120,
            max_memory_usage_bytes=16 * GiB,
            max_rows_to_read=10_000_000_000,
            max_result_rows=1_000_000,
            queries_per_hour=200_000,
            execution_time_per_hour_s=36_000,
        ),
        writer=WriterLimits(
            max_execution_time_s=300, max_memory_usage_bytes=8 * GiB, queries_per_minute=12_000
        ),
    ),
}
