"""Prometheus metrics of one ingestion process.

Why a registry per `Metrics` instance and not the global one: tests build
several apps and writers in one process, and the global registry refuses a
second metric of the same name. `/metrics` serves this registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# The series the chart's alerts read (charts/tenantry/templates/monitoring): named once.
BACKLOG = "tenantry_ingest_backlog_entries"
INSERT_ERRORS = "tenantry_ingest_insert_errors"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_accepted = Counter(
            "tenantry_ingest_events_accepted", "Events accepted (202)", registry=r
        )
        self.events_rejected = Counter(
            "tenantry_ingest_events_rejected", "Invalid events in rejected batches", registry=r
        )
        self.batches = Counter(
            "tenantry_ingest_batches",
            "POST /v1/events requests by outcome",
            ["outcome"],
            registry=r,
        )
        self.throttled = Counter(
            "tenantry_ingest_throttled",
            "Requests answered 429 (backlog over its bound)",
            registry=r,
        )
        self.request_seconds = Histogram(
            "tenantry_ingest_request_seconds",
            "Time to answer POST /v1/events",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.turn_wait_seconds = Histogram(
            "tenantry_ingest_turn_wait_seconds",
            "Time a request waited for earlier requests to be validated and appended",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.backlog = Gauge(
            BACKLOG,
            "Stream entries not yet written to ClickHouse (last seen)",
            registry=r,
        )
        self.writer_lag = Gauge(
            "tenantry_ingest_writer_lag_seconds",
            "Age of the oldest entry of the last insert when it was acknowledged",
            registry=r,
        )
        self.inserted_rows = Counter(
            "tenantry_ingest_inserted_rows", "Rows inserted into ClickHouse", registry=r
        )
        self.inserts = Counter("tenantry_ingest_inserts", "Inserts into ClickHouse", registry=r)
        self.insert_errors = Counter(INSERT_ERRORS, "Failed inserts (retried)", registry=r)
        self.reclaimed = Counter(
            "tenantry_ingest_reclaimed_entries",
            "Stream entries taken over from dead consumers",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
