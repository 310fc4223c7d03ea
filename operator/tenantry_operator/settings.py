"""Operator settings from the environment, with defaults that suit a local run.

One pydantic-settings model: each field names its environment variable (the alias),
its default, bounds and meaning (the docstring; `docs/settings.md` is generated from
it). A bad value stops the operator at start with a message naming the variable
(`tenantry.settings.SettingsError`), instead of a reconcile failing later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tenantry.settings import from_mapping
from tenantry_operator.normalize import Images
from tenantry_operator.s3 import S3Config


def _blank_none(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    return value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(x.strip() for x in value.split(",") if x.strip())
    return value


Text = Annotated[str | None, BeforeValidator(_blank_none)]


class Settings(BaseSettings):
    """The operator's environment."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        env_ignore_empty=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    clickhouse_image: str = Field(Images.clickhouse, validation_alias="TENANTRY_CLICKHOUSE_IMAGE")
    """Image repository of the tenants' ClickHouse servers (the tag is the spec's version)."""
    keeper_image: str = Field(Images.keeper, validation_alias="TENANTRY_KEEPER_IMAGE")
    """Image repository of ClickHouse Keeper."""
    redis_image: str = Field(Images.redis, validation_alias="TENANTRY_REDIS_IMAGE")
    """Image repository of the tenants' Redis."""
    ingestion_image: str = Field(Images.ingestion, validation_alias="TENANTRY_INGESTION_IMAGE")
    """Image of the ingestion pods and the backup CronJob (this project's image: `tenantry
    ingest`, `tenantry backup`)."""
    redis_exporter_image: str | None = Field(None, validation_alias="TENANTRY_REDIS_EXPORTER_IMAGE")
    """Image of the metrics sidecar next to each tenant's Redis (`tenantry redis-exporter`);
    unset: the ingestion image."""
    platform_namespaces: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)] = Field(
        ("tenantry-system",), validation_alias="TENANTRY_PLATFORM_NAMESPACES"
    )
    """Comma-separated namespaces whose pods may reach the tenants' stacks (the control
    plane's, the operator's)."""
    monitoring_namespaces: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)] = (
        Field((), validation_alias="TENANTRY_MONITORING_NAMESPACES")
    )
    """Comma-separated namespaces whose pods (Prometheus) may scrape the tenants' metrics
    ports, and nothing else of them: ingestion 9464, ClickHouse and Keeper 9363. Empty:
    no such rule."""
    resync_seconds: float = Field(300.0, gt=0, validation_alias="TENANTRY_RESYNC_SECONDS")
    """Each Tenant is reconciled at least this often, even without events."""
    busy_recheck_seconds: float = Field(
        30.0, gt=0, validation_alias="TENANTRY_BUSY_RECHECK_SECONDS"
    )
    """How soon a tenant that is not converged is looked at again when no watch event
    comes (a safety net; watches drive it)."""
    # While waiting on what no watch announces (the tenant's ClickHouse answering the
    # schema step), retry after 1 s, doubling up to retry_max_seconds: a refusal during
    # start-up or a slow moment costs seconds, not a busy recheck per attempt.
    retry_first_seconds: ClassVar[float] = 1.0
    retry_max_seconds: float = Field(15.0, gt=0, validation_alias="TENANTRY_RETRY_MAX_SECONDS")
    """Ceiling of the schema step's retry backoff (from 1 s, doubling)."""
    max_shards_in_flight: int = Field(2, ge=1, validation_alias="TENANTRY_MAX_SHARDS_IN_FLIGHT")
    """Rolling updates: shards updated at once (one host per shard at a time)."""
    max_concurrent_reconciles: int = Field(
        8, ge=1, validation_alias="TENANTRY_MAX_CONCURRENT_RECONCILES"
    )
    """Tenants reconciled at once. Bounded so that, with hundreds of tenants arriving
    together, each one completes quickly in turn instead of all of them slowly."""
    s3_endpoint: Text = Field(None, validation_alias="TENANTRY_S3_ENDPOINT")
    """S3 endpoint of the backups; unset: backups are reported as not configured."""
    s3_access_key_id: str = Field("", validation_alias="TENANTRY_S3_ACCESS_KEY_ID")
    """S3 access key id of the backups."""
    s3_secret_access_key: str = Field(
        "", validation_alias="TENANTRY_S3_SECRET_ACCESS_KEY", repr=False
    )
    """S3 secret access key of the backups."""
    s3_region: str = Field("us-east-1", validation_alias="TENANTRY_S3_REGION")
    """S3 region of the backups."""
    delete_retries: int = Field(5, ge=0, validation_alias="TENANTRY_DELETE_RETRIES")
    """Bounded retries of the S3 cleanup when a Tenant is deleted."""
    clickhouse_override: Text = Field(None, validation_alias="TENANTRY_CLICKHOUSE_URL_OVERRIDE")
    """Reach every tenant's ClickHouse at this URL instead of its Service (local runs,
    where kwok pods run nothing: the loopback engine; one database per tenant keeps them
    apart)."""
    controlplane_url: Text = Field(None, validation_alias="TENANTRY_CONTROLPLANE_URL")
    """The control plane: ingestion pods check API keys there, usage is reported there,
    plan limits are read there. Unset: none of these."""
    internal_token: Text = Field(None, validation_alias="TENANTRY_INTERNAL_TOKEN", repr=False)
    """Bearer token of the control plane's internal API (given to ingestion pods too)."""
    plan_recheck_seconds: float = Field(
        60.0, gt=0, validation_alias="TENANTRY_PLAN_RECHECK_SECONDS"
    )
    """Plan limits read from the control plane are cached this long, and a Tenant refused
    for its plan is looked at again after it (org_limits.py)."""
    usage_interval_seconds: float = Field(
        300.0, gt=0, validation_alias="TENANTRY_USAGE_INTERVAL_SECONDS"
    )
    """How often storage usage is measured and reported (read when the handlers are
    registered: kopf timers take their interval then)."""
    liveness: str = Field("http://0.0.0.0:8080/healthz", validation_alias="TENANTRY_LIVENESS")
    """kopf's liveness endpoint (``tenantry operator --liveness`` overrides it)."""
    metrics_listen: Text = Field(None, validation_alias="TENANTRY_METRICS_LISTEN")
    """``host:port`` of the Prometheus ``/metrics`` listener (the chart sets
    ``0.0.0.0:<operator.metrics.port>``); unset: no metrics listener. An internal port:
    no Service of the chart exposes it unless asked."""

    @property
    def images(self) -> Images:
        return Images(
            clickhouse=self.clickhouse_image,
            keeper=self.keeper_image,
            redis=self.redis_image,
            ingestion=self.ingestion_image,
            redis_exporter=self.redis_exporter_image,
        )

    @property
    def s3(self) -> S3Config | None:
        """Backups' S3; None: backups are reported as not configured."""
        if not self.s3_endpoint:
            return None
        return S3Config(
            endpoint=self.s3_endpoint,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
            region=self.s3_region,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read from `env` (default: the process environment); SettingsError names the
        variables at fault."""
        return from_mapping(cls, os.environ if env is None else env)
