"""The ingestion service's configuration, read from the environment once at start.

One pydantic-settings model: each field names its environment variable (the alias),
its default, bounds and meaning (the docstring, which `docs/settings.md` is generated
from). The environment is the contract with the operator (see
`tenantry_operator.builders.ingestion.env`), so `from_env` reads any given mapping the
same way it reads the process's (`tenantry.settings.from_mapping`), and the unit tests
feed it the env the operator renders. Nothing after start-up reads `os.environ`.

API keys, exactly one of:
- TENANTRY_CONTROLPLANE_URL + TENANTRY_INTERNAL_TOKEN: keys are introspected
  at the control plane (the SaaS deployment);
- TENANTRY_INGEST_KEYS: comma-separated sha256 hex digests of accepted keys
  (standalone deployments without a control plane, local runs).
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tenantry import contract
from tenantry.settings import SettingsError, from_mapping

__all__ = ["Settings", "SettingsError", "clickhouse_url", "from_env", "key_digest"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def key_digest(key: str) -> str:
    """sha256 hex of an API key: what TENANTRY_INGEST_KEYS lists."""
    return hashlib.sha256(key.encode()).hexdigest()


def clickhouse_url(url: str, *, user: str | None, password: str | None) -> str:
    """`url` with the user and password put in for http(s); chdb URLs unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not user:
        return url
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password or '', safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _stripped(value: Any) -> Any:
    """Surrounding blanks dropped; a blank value counts as unset."""
    if isinstance(value, str):
        return value.strip() or None
    return value


Text = Annotated[str | None, BeforeValidator(_stripped)]


def _digests(value: Any) -> Any:
    if isinstance(value, str):
        return frozenset(d.strip().lower() for d in value.split(",") if d.strip())
    return value


def host_port(value: str) -> str:
    """``value`` when it is ``host:port`` (an empty host: every interface)."""
    _host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port")
    return value


def listen_address(listen: str) -> tuple[str, int]:
    """The (host, port) a ``host:port`` setting listens on."""
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)  # noqa: S104 - a pod listens on all interfaces


class Settings(BaseSettings):
    """The ingestion pod's environment (the operator sets the first group)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_ignore_empty=True, use_attribute_docstrings=True
    )

    tenant: Annotated[str, BeforeValidator(_stripped)] = Field(validation_alias="TENANTRY_TENANT")
    """The tenant whose events this service accepts (set by the operator)."""
    clickhouse_endpoint: Annotated[str, BeforeValidator(_stripped)] = Field(
        validation_alias="TENANTRY_CLICKHOUSE_URL"
    )
    """ClickHouse: ``http(s)://host:port/`` (the tenant's Service) or ``chdb:///<dir>``
    (the engine in-process)."""
    clickhouse_user: Text = Field(None, validation_alias="TENANTRY_CLICKHOUSE_USER")
    """User put into an http(s) ClickHouse URL (the operator sets ``writer``)."""
    clickhouse_password: str | None = Field(
        None, validation_alias="TENANTRY_CLICKHOUSE_PASSWORD", repr=False
    )
    """That user's password (from the tenant's ``clickhouse-credentials`` Secret)."""
    clickhouse_database: Text = Field(None, validation_alias="TENANTRY_CLICKHOUSE_DATABASE")
    """The tenant's database; unset: the shared rule (``tenantry.contract.tenant_database``)."""
    clickhouse_cluster: Text = Field(None, validation_alias="TENANTRY_CLICKHOUSE_CLUSTER")
    """ClickHouse cluster of the tenant's tables; the schema ingestion provisions is one
    server's (the operator provisions clusters host by host), so unset is the norm."""
    retention_days: int = Field(30, ge=1, validation_alias="TENANTRY_RETENTION_DAYS")
    """Events older than this are refused (and expire in ClickHouse)."""
    listen: str = Field("0.0.0.0:8080", validation_alias="TENANTRY_LISTEN")
    """``host:port`` of the HTTP listener (events, health, readiness)."""
    metrics_listen: str = Field("0.0.0.0:9464", validation_alias="TENANTRY_METRICS_LISTEN")
    """``host:port`` of the Prometheus ``/metrics`` listener: an internal port, never the
    one producers reach (the tenant's NetworkPolicies open only 8080 to them)."""
    redis_host: str = Field("127.0.0.1", validation_alias="TENANTRY_REDIS_HOST")
    """The tenant's Redis (the event stream and the per-key rate limits)."""
    redis_port: int = Field(6379, ge=1, le=65535, validation_alias="TENANTRY_REDIS_PORT")
    """Port of the tenant's Redis."""
    redis_password: str | None = Field(None, validation_alias="TENANTRY_REDIS_PASSWORD", repr=False)
    """Password of the tenant's Redis (from its ``redis-credentials`` Secret)."""
    key_digests: Annotated[frozenset[str], NoDecode, BeforeValidator(_digests)] = Field(
        frozenset(), validation_alias="TENANTRY_INGEST_KEYS"
    )
    """Standalone API keys: comma-separated sha256 hex digests (``key_digest``)."""
    controlplane_url: Text = Field(None, validation_alias="TENANTRY_CONTROLPLANE_URL")
    """The control plane, which checks API keys and receives usage reports."""
    internal_token: Text = Field(None, validation_alias="TENANTRY_INTERNAL_TOKEN", repr=False)
    """Bearer token of the control plane's internal API."""
    org_id: Text = Field(None, validation_alias="TENANTRY_ORG_ID")
    """The tenant's organisation: usage is reported to its billing (with the control
    plane)."""
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1, validation_alias="TENANTRY_INGEST_MAX_BODY_BYTES"
    )
    """Largest request body, compressed or decoded (413 beyond)."""
    max_batch_events: int = Field(10_000, ge=1, validation_alias="TENANTRY_INGEST_MAX_BATCH_EVENTS")
    """Most events in one request (the whole batch is refused beyond)."""
    max_backlog: int = Field(20_000, ge=1, validation_alias="TENANTRY_INGEST_MAX_BACKLOG")
    """Batches waiting in the stream before requests get 429 (``backlog_full``)."""
    retry_after_seconds: int = Field(
        1, ge=1, validation_alias="TENANTRY_INGEST_RETRY_AFTER_SECONDS"
    )
    """``Retry-After`` of a full backlog and of a 503."""
    rate_limit_per_key: int = Field(
        500, ge=1, validation_alias="TENANTRY_INGEST_RATE_LIMIT_PER_KEY"
    )
    """Requests of one API key accepted in any rate-limit window (429 + ``Retry-After``
    beyond; counted in the tenant's Redis, shared by every ingestion pod)."""
    rate_limit_window_seconds: int = Field(
        1, ge=1, validation_alias="TENANTRY_INGEST_RATE_LIMIT_WINDOW_SECONDS"
    )
    """The moving window of the per-key rate limit."""
    idempotency_seconds: int = Field(
        3600, ge=1, le=7 * 86400, validation_alias="TENANTRY_INGEST_IDEMPOTENCY_SECONDS"
    )
    """How long a batch's ``Idempotency-Key`` is remembered: a batch sent again under the
    same key (and API key) within it is stored once. Costs about 200 bytes of the
    tenant's Redis per batch that carries a key, for this long."""
    flush_rows: int = Field(200_000, ge=1, validation_alias="TENANTRY_INGEST_FLUSH_ROWS")
    """The writer inserts when it holds this many rows..."""
    flush_seconds: float = Field(1.0, gt=0, validation_alias="TENANTRY_INGEST_FLUSH_SECONDS")
    """...or when its oldest row has waited this long."""
    claim_idle_seconds: float = Field(
        60.0, gt=0, validation_alias="TENANTRY_INGEST_CLAIM_IDLE_SECONDS"
    )
    """Entries another writer has held this long are taken over (it is presumed dead);
    more than the flush interval."""
    consumer_name: Text = Field(None, validation_alias="TENANTRY_INGEST_CONSUMER")
    """This writer's name in the stream's consumer group; unset: the host (pod) name."""
    provision_option: bool | None = Field(None, validation_alias="TENANTRY_INGEST_PROVISION")
    """Create the tenant's schema at start; unset: only for a ``chdb:`` URL (the operator
    provisions a real ClickHouse)."""
    pause_after_insert: Text = Field(
        None, validation_alias="TENANTRY_INGEST_TEST_PAUSE_AFTER_INSERT"
    )
    """Tests only: a file; the writer writes the entry ids there after an insert and
    stops before the ack."""

    @field_validator("listen", "metrics_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return host_port(value)

    @field_validator("key_digests")
    @classmethod
    def _hex_digests(cls, value: frozenset[str]) -> frozenset[str]:
        if any(not _DIGEST.match(d) for d in value):
            raise ValueError("must list sha256 hex digests (64 hex digits)")
        return value

    @field_validator("controlplane_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") or None if value else None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.key_digests and self.controlplane_url:
            raise ValueError("set TENANTRY_INGEST_KEYS or TENANTRY_CONTROLPLANE_URL, not both")
        if not self.key_digests and not self.controlplane_url:
            raise ValueError("API keys: set TENANTRY_CONTROLPLANE_URL or TENANTRY_INGEST_KEYS")
        if self.controlplane_url and not self.internal_token:
            raise ValueError("TENANTRY_CONTROLPLANE_URL needs TENANTRY_INTERNAL_TOKEN")
        if self.claim_idle_seconds <= self.flush_seconds:
            # a live writer holds entries up to flush_seconds: they must not look dead
            raise ValueError(
                "TENANTRY_INGEST_CLAIM_IDLE_SECONDS must exceed TENANTRY_INGEST_FLUSH_SECONDS"
            )
        return self

    @property
    def clickhouse_url(self) -> str:
        """The URL the client opens: the endpoint with the user and password put in."""
        return clickhouse_url(
            self.clickhouse_endpoint,
            user=self.clickhouse_user,
            password=self.clickhouse_password or None,
        )

    @property
    def database(self) -> str:
        return self.clickhouse_database or contract.tenant_database(self.tenant)

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0] or "0.0.0.0"  # noqa: S104 - a pod listens on all interfaces

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def metrics_address(self) -> tuple[str, int]:
        return listen_address(self.metrics_listen)

    @property
    def consumer(self) -> str:
        return self.consumer_name or socket.gethostname()

    @property
    def provision(self) -> bool:
        if self.provision_option is None:
            return self.clickhouse_endpoint.startswith("chdb:")
        return self.provision_option

    @property
    def table(self) -> str:
        return f"{self.database}.events"

    @property
    def stream_prefix(self) -> str:
        return f"tenantry:ingest:{self.tenant}"


def from_env(env: Mapping[str, str]) -> Settings:
    """Settings from environment variables; SettingsError names what is wrong."""
    return from_mapping(Settings, env)
