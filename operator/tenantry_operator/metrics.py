"""The operator's Prometheus metrics, served on an internal listener only.

What a platform team needs to see the operator working (issue 16): how long reconciles
take and how they end, how many run and wait for a slot, what it writes to the API
server, the tenants by phase and condition, and each tenant's last successful backup.
Labels are bounded: outcomes, kinds and verbs are fixed sets, phases and condition types
come from the Tenant API. The per-tenant gauges (conditions, last backup), which the
alerts need to name the tenant they concern, have a few series per Tenant, no more.

Why a registry of its own and not prometheus_client's global one: tests build several
runtimes in one process, and the global registry refuses a second metric of one name.
``/metrics`` is served by ``serve`` on ``TENANTRY_OPERATOR_METRICS_LISTEN`` (the chart's
``operator.metrics.port``), never on a Service producers or customers reach.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tenantry import contract

# The names of the series the chart's alerts, dashboards and tests read: defined here once.
RECONCILE_SECONDS = "tenantry_operator_reconcile_seconds"
IN_FLIGHT = "tenantry_operator_reconciles_in_flight"
WAITING = "tenantry_operator_reconciles_waiting"
API_WRITES = "tenantry_operator_api_writes"
SCHEMA_ERRORS = "tenantry_operator_schema_errors"
TENANTS = "tenantry_operator_tenants"
TENANT_CONDITIONS = "tenantry_operator_tenant_conditions"
LAST_BACKUP = "tenantry_operator_tenant_last_backup_timestamp_seconds"
# The labels that say which tenant a per-tenant series concerns. ``namespace`` is the
# tenant's namespace, not the operator's: the chart's operator PodMonitor honours the
# scraped labels so that the target's own ``namespace`` does not replace it.
TENANT_LABELS = ("tenant", "namespace")

# How a reconcile ended (worker.py): converged, progressing (waiting on children),
# retry (the tenant's ClickHouse refused the schema step), refused (plan limits or an
# invalid spec), kube_refused (the API server refused a child), error (anything else).
OUTCOMES = ("converged", "progressing", "retry", "refused", "kube_refused", "error")
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _TenantStates(Collector):
    """Tenants by phase; and per tenant, its conditions and last backup, from the last
    status each worker reported (``OperatorMetrics.observe``)."""

    def __init__(self) -> None:
        self.statuses: dict[str, Mapping[str, Any]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        phases: Tally[str] = Tally()
        for status in self.statuses.values():
            phases[str(status.get("phase") or "Unknown")] += 1
        by_phase = GaugeMetricFamily(TENANTS, "Tenants by phase", labels=["phase"])
        for phase, count in sorted(phases.items()):
            by_phase.add_metric([phase], count)
        yield by_phase
        # One series per tenant and condition type (a handful of types), valued 1, so
        # that an alert names the tenant it concerns; ``sum by (type, status)`` counts.
        conditions = GaugeMetricFamily(
            TENANT_CONDITIONS,
            "Each tenant's conditions: 1 per tenant, condition type and its status",
            labels=[*TENANT_LABELS, "type", "status"],
        )
        last_backup = GaugeMetricFamily(
            LAST_BACKUP,
            "When the tenant's newest complete backup finished (status.backup), per tenant",
            labels=list(TENANT_LABELS),
        )
        for tenant, status in sorted(self.statuses.items()):
            where = [tenant, contract.tenant_namespace(tenant)]
            for cond in status.get("conditions") or ():
                conditions.add_metric([*where, str(cond.get("type")), str(cond.get("status"))], 1)
            finished = _epoch((status.get("backup") or {}).get("lastSuccessTime"))
            if finished is not None:
                last_backup.add_metric(where, finished)
        yield conditions
        yield last_backup


def _epoch(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 time, None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_seconds = Histogram(
            RECONCILE_SECONDS,
            "Duration of one Tenant reconcile, by how it ended",
            ["outcome"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(IN_FLIGHT, "Reconciles running now", registry=r)
        self.waiting = Gauge(
            WAITING,
            "Reconciles waiting for a slot (TENANTRY_MAX_CONCURRENT_RECONCILES)",
            registry=r,
        )
        self.api_writes = Counter(
            API_WRITES,
            "Writes to the Kubernetes API, by kind and verb",
            ["kind", "verb"],
            registry=r,
        )
        self.schema_errors = Counter(
            SCHEMA_ERRORS,
            "Schema steps the tenant's ClickHouse refused or did not answer",
            registry=r,
        )
        self.tenants = _TenantStates()
        r.register(self.tenants)
        for outcome in OUTCOMES:  # every series exists from the start (rate() needs it)
            self.reconcile_seconds.labels(outcome)

    def write(self, kind: str, verb: str) -> None:
        """One write to the API server (``Kube``'s hook)."""
        self.api_writes.labels(kind, verb).inc()

    def observe(self, tenant: str, status: Mapping[str, Any] | None) -> None:
        """The status a worker last wrote or saw for ``tenant``."""
        if status is not None:
            self.tenants.statuses[tenant] = status

    def forget(self, tenant: str) -> None:
        self.tenants.statuses.pop(tenant, None)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def address(listen: str) -> tuple[str, int]:
    """``host:port`` split; an empty host listens on every interface."""
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)  # noqa: S104 - a pod listens on all interfaces


async def serve(metrics: OperatorMetrics, listen: str) -> web.AppRunner:
    """Serve ``/metrics`` on ``listen``; the caller cleans the runner up."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    app = web.Application()
    app.router.add_get("/metrics", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, *address(listen)).start()
    return runner


def outcome_of(converged: bool, retry: bool) -> str:
    """The outcome label of a reconcile that returned."""
    if retry:
        return "retry"
    return "converged" if converged else "progressing"
