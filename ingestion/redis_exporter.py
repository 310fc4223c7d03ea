"""Prometheus metrics of the tenant's Redis (the ingestion buffer): the sidecar the
operator renders next to redis-server (``tenantry redis-exporter``).

Each scrape asks the Redis in its pod for ``INFO`` (redis-py parses it) and turns the
fields an SRE watches into series named as github.com/oliver006/redis_exporter names
them, so dashboards written for that exporter read these: up, uptime, clients, memory
against maxmemory, commands, hits and misses, evictions, rejected connections, the
append-only file's health (what a 202 promises rests on it) and keys per database.

Why not oliver006/redis_exporter itself: the Go module proxy this project builds its
tools from refuses that module (403 for its version list and for v1.67.0, asked on
2026-12-06), so it cannot be built here from a pinned, hash-checked source. This uses
two maintained libraries instead (redis-py for the protocol and INFO parsing,
prometheus_client for the exposition) and only maps fields.

Served on ``TENANTRY_METRICS_LISTEN`` (default ``0.0.0.0:9121``, the container port
``metrics``), which no Service carries; the tenant's NetworkPolicies admit only the
monitoring namespaces to it.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator, Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingestion.settings import host_port, listen_address

log = logging.getLogger("tenantry.redis_exporter")

PORT = 9121  # redis_exporter's port, so the usual scrape configs find it
UP = "redis_up"
DB_KEYS = "redis_db_keys"
DB_KEYS_EXPIRING = "redis_db_keys_expiring"
AOF_LAST_WRITE_OK = "redis_aof_last_write_status"

# INFO field -> (series, help). Gauges are levels; counters only grow while the server
# runs (Prometheus' rate() handles the reset a restart brings).
GAUGES: Mapping[str, tuple[str, str]] = {
    "uptime_in_seconds": ("redis_uptime_in_seconds", "Seconds since the server started"),
    "connected_clients": ("redis_connected_clients", "Client connections open"),
    "blocked_clients": ("redis_blocked_clients", "Clients waiting in a blocking call"),
    "used_memory": ("redis_memory_used_bytes", "Memory Redis has allocated"),
    "maxmemory": ("redis_memory_max_bytes", "The maxmemory setting (0: no limit)"),
    "aof_enabled": ("redis_aof_enabled", "1 when the append-only file is on"),
    "aof_rewrite_in_progress": ("redis_aof_rewrite_in_progress", "1 during an AOF rewrite"),
}
COUNTERS: Mapping[str, tuple[str, str]] = {
    "total_commands_processed": ("redis_commands_processed", "Commands the server ran"),
    "total_connections_received": ("redis_connections_received", "Connections accepted"),
    "rejected_connections": ("redis_rejected_connections", "Connections refused (maxclients)"),
    "keyspace_hits": ("redis_keyspace_hits", "Key lookups that found the key"),
    "keyspace_misses": ("redis_keyspace_misses", "Key lookups that did not"),
    "evicted_keys": ("redis_evicted_keys", "Keys evicted for maxmemory"),
    "expired_keys": ("redis_expired_keys", "Keys removed on expiry"),
}
# INFO field whose value is "ok" or "err" -> (series, help): 1 for ok.
STATUSES: Mapping[str, tuple[str, str]] = {
    "aof_last_write_status": (AOF_LAST_WRITE_OK, "1 when the last AOF write succeeded"),
    "aof_last_bgrewrite_status": ("redis_aof_last_bgrewrite_status", "1: last rewrite ok"),
    "rdb_last_bgsave_status": ("redis_rdb_last_bgsave_status", "1: last RDB save ok"),
}


class RedisCollector(Collector):
    """One ``INFO`` per scrape; ``redis_up`` 0 (and nothing else) when it fails."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(UP, "1 when Redis answered INFO at this scrape")
        try:
            info: dict[str, Any] = self.client.info()
        except redis.RedisError as err:
            log.warning("INFO failed: %s", type(err).__name__)  # never the password
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families(info)


def families(info: Mapping[str, Any]) -> Iterator[Metric]:
    """The series of one parsed ``INFO`` (pure)."""
    for field, (name, text) in GAUGES.items():
        if isinstance(info.get(field), int | float):
            yield GaugeMetricFamily(name, text, value=float(info[field]))
    for field, (name, text) in COUNTERS.items():
        if isinstance(info.get(field), int | float):
            yield CounterMetricFamily(name, text, value=float(info[field]))
    for field, (name, text) in STATUSES.items():
        if field in info:
            yield GaugeMetricFamily(name, text, value=1.0 if info[field] == "ok" else 0.0)
    keys = GaugeMetricFamily(DB_KEYS, "Keys per database", labels=["db"])
    expiring = GaugeMetricFamily(
        DB_KEYS_EXPIRING, "Keys with an expiry per database", labels=["db"]
    )
    for db, stats in sorted(info.items()):
        if db.startswith("db") and db[2:].isdigit() and isinstance(stats, Mapping):
            keys.add_metric([db], float(stats.get("keys", 0)))
            expiring.add_metric([db], float(stats.get("expires", 0)))
    yield keys
    yield expiring


class ExporterSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    redis_host: str = Field("127.0.0.1", validation_alias="TENANTRY_REDIS_HOST")
    redis_port: int = Field(6379, ge=1, le=65535, validation_alias="TENANTRY_REDIS_PORT")
    redis_password: str | None = Field(None, validation_alias="TENANTRY_REDIS_PASSWORD", repr=False)
    metrics_listen: str = Field(f"0.0.0.0:{PORT}", validation_alias="TENANTRY_METRICS_LISTEN")

    @field_validator("metrics_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return host_port(value)

    @property
    def metrics_address(self) -> tuple[str, int]:
        return listen_address(self.metrics_listen)


def registry(settings: ExporterSettings) -> CollectorRegistry:
    client = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password,
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    out = CollectorRegistry(auto_describe=False)
    out.register(RedisCollector(client))
    return out


def run() -> int:
    """Serve until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = ExporterSettings()
    host, port = settings.metrics_address
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    server, thread = start_http_server(port, addr=host, registry=registry(settings))
    log.info("serving /metrics on %s:%d for Redis at %s", host, port, settings.redis_host)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.shutdown()
    thread.join(timeout=5)
    return 0
