"""Operator settings from the environment, with defaults that suit a local run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tenantry_operator.normalize import Images
from tenantry_operator.s3 import S3Config


def _env_tuple(name: str, default: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in os.environ.get(name, default).split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    images: Images = field(default_factory=Images)
    platform_namespaces: tuple[str, ...] = ("tenantry-system",)
    resync_seconds: float = 300.0  # periodic check even without events
    busy_recheck_seconds: float = 30.0  # safety net while converging; watches drive it
    # While waiting on what no watch announces (the tenant's ClickHouse answering the
    # schema step), retry after 1 s, doubling up to this: a refusal during start-up or
    # a slow moment costs seconds, not a busy recheck per attempt.
    retry_first_seconds: float = 1.0
    retry_max_seconds: float = 15.0
    max_shards_in_flight: int = 2  # rolling updates: shards updated at once
    # Tenants reconciled at once. Bounded so that, with hundreds of tenants arriving
    # together, each one completes quickly in turn instead of all of them slowly.
    max_concurrent_reconciles: int = 8
    s3: S3Config | None = None  # backups; None: backups are reported as not configured
    delete_retries: int = 5  # bounded retries of S3 cleanup when a Tenant is deleted
    # Reach every tenant's ClickHouse at this URL instead of its Service (local runs: the
    # loopback engine; one database per tenant keeps them apart).
    clickhouse_override: str | None = None
    # Ingestion pods validate API keys at the control plane with this internal token.
    controlplane_url: str | None = None
    internal_token: str | None = field(default=None, repr=False)
    # Plan limits read from the control plane are cached this long, and a Tenant refused
    # for its plan is looked at again after it (admission.py).
    plan_recheck_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            images=Images(
                clickhouse=os.environ.get("TENANTRY_CLICKHOUSE_IMAGE", Images.clickhouse),
                keeper=os.environ.get("TENANTRY_KEEPER_IMAGE", Images.keeper),
                redis=os.environ.get("TENANTRY_REDIS_IMAGE", Images.redis),
                ingestion=os.environ.get("TENANTRY_INGESTION_IMAGE", Images.ingestion),
            ),
            platform_namespaces=_env_tuple("TENANTRY_PLATFORM_NAMESPACES", "tenantry-system"),
            resync_seconds=float(os.environ.get("TENANTRY_RESYNC_SECONDS", "300")),
            busy_recheck_seconds=float(os.environ.get("TENANTRY_BUSY_RECHECK_SECONDS", "30")),
            retry_max_seconds=float(os.environ.get("TENANTRY_RETRY_MAX_SECONDS", "15")),
            max_shards_in_flight=int(os.environ.get("TENANTRY_MAX_SHARDS_IN_FLIGHT", "2")),
            max_concurrent_reconciles=int(
                os.environ.get("TENANTRY_MAX_CONCURRENT_RECONCILES", "8")
            ),
            s3=S3Config.from_env(),
            delete_retries=int(os.environ.get("TENANTRY_DELETE_RETRIES", "5")),
            clickhouse_override=os.environ.get("TENANTRY_CLICKHOUSE_URL_OVERRIDE") or None,
            controlplane_url=os.environ.get("TENANTRY_CONTROLPLANE_URL") or None,
            internal_token=os.environ.get("TENANTRY_INTERNAL_TOKEN") or None,
            plan_recheck_seconds=float(os.environ.get("TENANTRY_PLAN_RECHECK_SECONDS", "60")),
        )
