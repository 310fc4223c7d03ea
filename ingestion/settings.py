"""The ingestion service's configuration, read from the environment once at start.

Why a plain frozen dataclass built by a pure function of a mapping: the
environment is the contract with the operator (see
`tenantry_operator.builders.ingestion.env`), so it is unit-tested as such, and
nothing after start-up reads `os.environ`.

Set by the operator: TENANTRY_TENANT, TENANTRY_LISTEN, TENANTRY_REDIS_HOST,
TENANTRY_REDIS_PORT, TENANTRY_REDIS_PASSWORD, TENANTRY_CLICKHOUSE_URL,
TENANTRY_CLICKHOUSE_USER, TENANTRY_CLICKHOUSE_PASSWORD,
TENANTRY_CLICKHOUSE_CLUSTER, TENANTRY_RETENTION_DAYS.

API keys, exactly one of:
- TENANTRY_CONTROLPLANE_URL + TENANTRY_INTERNAL_TOKEN: keys are introspected
  at the control plane (the SaaS deployment);
- TENANTRY_INGEST_KEYS: comma-separated sha256 hex digests of accepted keys
  (standalone deployments without a control plane, local runs).

Optional tuning, with defaults: see `Settings` fields and `from_env`.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from tenantry import contract

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class SettingsError(ValueError):
    """The environment does not describe a runnable service."""


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


def _split_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        return host or "0.0.0.0", int(port)  # noqa: S104 - a pod listens on all interfaces
    except ValueError:
        raise SettingsError(f"TENANTRY_LISTEN must be host:port, not {value!r}") from None


@dataclass(frozen=True)
class Settings:
    tenant: str
    clickhouse_url: str
    database: str
    retention_days: int = 30
    clickhouse_cluster: str | None = None
    listen_host: str = "0.0.0.0"  # noqa: S104
    listen_port: int = 8080
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: str | None = None
    key_digests: frozenset[str] = frozenset()
    controlplane_url: str | None = None
    internal_token: str | None = None
    # The tenant's organisation: usage is reported to its billing (with the control plane).
    org_id: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_events: int = 10_000
    max_backlog: int = 20_000
    retry_after_seconds: int = 1
    flush_rows: int = 200_000
    flush_seconds: float = 1.0
    claim_idle_seconds: float = 60.0
    consumer: str = "ingestion"
    provision: bool = False
    pause_after_insert: str | None = None

    @property
    def table(self) -> str:
        return f"{self.database}.events"

    @property
    def stream_prefix(self) -> str:
        return f"tenantry:ingest:{self.tenant}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        value = int(env.get(name, "") or default)
    except ValueError:
        raise SettingsError(f"{name} must be an integer") from None
    if value < 1:
        raise SettingsError(f"{name} must be at least 1")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, "") or default)
    except ValueError:
        raise SettingsError(f"{name} must be a number") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false")


def from_env(env: Mapping[str, str]) -> Settings:
    """Settings from environment variables; SettingsError says what is missing."""
    tenant = env.get("TENANTRY_TENANT", "").strip()
    if not tenant:
        raise SettingsError("TENANTRY_TENANT is required")
    url = env.get("TENANTRY_CLICKHOUSE_URL", "").strip()
    if not url:
        raise SettingsError("TENANTRY_CLICKHOUSE_URL is required")
    host, port = _split_listen(env.get("TENANTRY_LISTEN", "0.0.0.0:8080"))
    digests = frozenset(
        d.strip().lower() for d in env.get("TENANTRY_INGEST_KEYS", "").split(",") if d.strip()
    )
    bad = [d for d in digests if not _DIGEST.match(d)]
    if bad:
        raise SettingsError("TENANTRY_INGEST_KEYS must list sha256 hex digests (64 hex digits)")
    controlplane = env.get("TENANTRY_CONTROLPLANE_URL", "").strip().rstrip("/") or None
    token = env.get("TENANTRY_INTERNAL_TOKEN", "").strip() or None
    if digests and controlplane:
        raise SettingsError("set TENANTRY_INGEST_KEYS or TENANTRY_CONTROLPLANE_URL, not both")
    if not digests and not controlplane:
        raise SettingsError("API keys: set TENANTRY_CONTROLPLANE_URL or TENANTRY_INGEST_KEYS")
    if controlplane and not token:
        raise SettingsError("TENANTRY_CONTROLPLANE_URL needs TENANTRY_INTERNAL_TOKEN")
    database = env.get("TENANTRY_CLICKHOUSE_DATABASE", "").strip()
    database = database or contract.tenant_database(tenant)
    flush_seconds = _float(env, "TENANTRY_INGEST_FLUSH_SECONDS", 1.0)
    claim_idle_seconds = _float(env, "TENANTRY_INGEST_CLAIM_IDLE_SECONDS", 60.0)
    if claim_idle_seconds <= flush_seconds:
        # a live writer holds entries up to flush_seconds: they must not look dead
        raise SettingsError(
            "TENANTRY_INGEST_CLAIM_IDLE_SECONDS must exceed TENANTRY_INGEST_FLUSH_SECONDS"
        )
    return Settings(
        tenant=tenant,
        clickhouse_url=clickhouse_url(
            url,
            user=env.get("TENANTRY_CLICKHOUSE_USER") or None,
            password=env.get("TENANTRY_CLICKHOUSE_PASSWORD") or None,
        ),
        database=database,
        retention_days=_int(env, "TENANTRY_RETENTION_DAYS", 30),
        clickhouse_cluster=env.get("TENANTRY_CLICKHOUSE_CLUSTER", "").strip() or None,
        listen_host=host,
        listen_port=port,
        redis_host=env.get("TENANTRY_REDIS_HOST", "127.0.0.1"),
        redis_port=_int(env, "TENANTRY_REDIS_PORT", 6379),
        redis_password=env.get("TENANTRY_REDIS_PASSWORD") or None,
        key_digests=digests,
        controlplane_url=controlplane,
        internal_token=token,
        org_id=env.get("TENANTRY_ORG_ID", "").strip() or None,
        max_body_bytes=_int(env, "TENANTRY_INGEST_MAX_BODY_BYTES", 8 * 1024 * 1024),
        max_batch_events=_int(env, "TENANTRY_INGEST_MAX_BATCH_EVENTS", 10_000),
        max_backlog=_int(env, "TENANTRY_INGEST_MAX_BACKLOG", 20_000),
        retry_after_seconds=_int(env, "TENANTRY_INGEST_RETRY_AFTER_SECONDS", 1),
        flush_rows=_int(env, "TENANTRY_INGEST_FLUSH_ROWS", 200_000),
        flush_seconds=flush_seconds,
        claim_idle_seconds=claim_idle_seconds,
        consumer=env.get("TENANTRY_INGEST_CONSUMER", "").strip() or socket.gethostname(),
        provision=_bool(env, "TENANTRY_INGEST_PROVISION", url.startswith("chdb:")),
        pause_after_insert=env.get("TENANTRY_INGEST_TEST_PAUSE_AFTER_INSERT") or None,
    )
