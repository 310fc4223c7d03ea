"""Build the chart's Grafana dashboards with Grafana's own SDK (grafana-foundation-sdk).

Two dashboards, written as JSON into ``charts/tenantry/files/dashboards/`` and shipped by
the chart in ConfigMaps that Grafana's dashboard sidecar loads (``monitoring.dashboards``):

* operator overview: tenants by phase and condition, reconciles (rate, p95, in flight,
  waiting), API writes, schema errors, backup ages, and the control plane's requests;
* tenant overview (a ``tenant`` variable): ingestion accepted/rejected events, backlog,
  writer lag, insert errors, ClickHouse queries and replica delay, volume use, backup age.

Every query uses the metric names the code exports (``tests/unit/chart/test_dashboards.py``
checks them against the registries, parses each with promtool, and fails when the files
are not what this script writes). Run ``python -m scripts.dashboards`` after a change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUT = Path(__file__).resolve().parents[1] / "charts" / "tenantry" / "files" / "dashboards"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "[$__rate_interval]"
TENANT = 'tenant="$tenant"'


def _panel(title: str, unit: str, *queries: tuple[str, str]) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(PROMETHEUS).height(8).span(12)
    for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(
            prometheus.Dataquery().ref_id(ref).expr(expr).legend_format(legend).range()
        )
    return panel


def _base(uid: str, title: str) -> dashboard.Dashboard:
    datasource = dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["tenantry"])
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(datasource)
    )


def operator_overview() -> dashboard.Dashboard:
    return (
        _base("tenantry-operator", "Tenantry / Operator overview")
        .with_row(dashboard.Row("Tenants"))
        .with_panel(
            _panel(
                "Tenants by phase",
                "short",
                ("sum by (phase) (tenantry_operator_tenants)", "{{phase}}"),
            )
        )
        .with_panel(
            _panel(
                "Tenants by condition (True)",
                "short",
                ('sum by (type) (tenantry_operator_tenant_conditions{status="True"})', "{{type}}"),
            )
        )
        .with_panel(
            _panel(
                "Age of each tenant's last successful backup",
                "s",
                ("time() - tenantry_operator_tenant_last_backup_timestamp_seconds", "{{tenant}}"),
            )
        )
        .with_row(dashboard.Row("Reconciles"))
        .with_panel(
            _panel(
                "Reconciles by outcome",
                "ops",
                (
                    f"sum by (outcome) (rate(tenantry_operator_reconcile_seconds_count{RATE}))",
                    "{{outcome}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Reconcile duration p95 by outcome",
                "s",
                (
                    "histogram_quantile(0.95, sum by (le, outcome)"
                    f" (rate(tenantry_operator_reconcile_seconds_bucket{RATE})))",
                    "{{outcome}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Reconciles running and waiting for a slot",
                "short",
                ("sum(tenantry_operator_reconciles_in_flight)", "in flight"),
                ("sum(tenantry_operator_reconciles_waiting)", "waiting"),
            )
        )
        .with_panel(
            _panel(
                "API writes by kind and verb; schema step errors",
                "ops",
                (
                    f"sum by (kind, verb) (rate(tenantry_operator_api_writes_total{RATE}))",
                    "{{verb}} {{kind}}",
                ),
                (f"sum(rate(tenantry_operator_schema_errors_total{RATE}))", "schema errors"),
            )
        )
        .with_row(dashboard.Row("Control plane"))
        .with_panel(
            _panel(
                "Control plane requests by status",
                "reqps",
                (f"sum by (status) (rate(tenantry_http_requests_total{RATE}))", "{{status}}"),
            )
        )
        .with_panel(
            _panel(
                "Control plane latency p95 (promise: 200 ms)",
                "s",
                (
                    "histogram_quantile(0.95, sum by (le)"
                    f" (rate(tenantry_http_request_duration_seconds_bucket{RATE})))",
                    "p95",
                ),
            )
        )
    )


def tenant_overview() -> dashboard.Dashboard:
    tenant = (
        dashboard.QueryVariable("tenant")
        .label("Tenant")
        .datasource(PROMETHEUS)
        .query("label_values(tenantry_operator_tenant_last_backup_timestamp_seconds, tenant)")
    )
    return (
        _base("tenantry-tenant", "Tenantry / Tenant overview")
        .with_variable(tenant)
        .with_row(dashboard.Row("Ingestion"))
        .with_panel(
            _panel(
                "Events accepted and rejected",
                "ops",
                (f"sum(rate(tenantry_ingest_events_accepted_total{{{TENANT}}}{RATE}))", "accepted"),
                (f"sum(rate(tenantry_ingest_events_rejected_total{{{TENANT}}}{RATE}))", "rejected"),
            )
        )
        .with_panel(
            _panel(
                "Backlog (stream entries not yet in ClickHouse)",
                "short",
                (f"sum(tenantry_ingest_backlog_entries{{{TENANT}}})", "backlog"),
            )
        )
        .with_panel(
            _panel(
                "Writer lag and insert errors",
                "s",
                (f"max(tenantry_ingest_writer_lag_seconds{{{TENANT}}})", "lag"),
                (
                    f"sum(rate(tenantry_ingest_insert_errors_total{{{TENANT}}}{RATE}))",
                    "insert errors/s",
                ),
            )
        )
        .with_row(dashboard.Row("Redis (the ingestion buffer; its exporter sidecar)"))
        .with_panel(
            _panel(
                "Redis memory used and its limit",
                "bytes",
                (f"max(redis_memory_used_bytes{{{TENANT}}})", "used"),
                (f"max(redis_memory_max_bytes{{{TENANT}}})", "maxmemory (0: none)"),
            )
        )
        .with_panel(
            _panel(
                "Redis up and append-only file writes ok",
                "short",
                (f"min(redis_up{{{TENANT}}})", "up"),
                (f"min(redis_aof_last_write_status{{{TENANT}}})", "AOF write ok"),
            )
        )
        .with_row(dashboard.Row("ClickHouse and Keeper"))
        .with_panel(
            _panel(
                "Queries by host",
                "ops",
                (
                    f"sum by (pod) (rate(ClickHouseProfileEvents_Query{{{TENANT}}}{RATE}))",
                    "{{pod}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Replica delay by host",
                "s",
                (
                    f"max by (pod) (ClickHouseAsyncMetrics_ReplicasMaxAbsoluteDelay{{{TENANT}}})",
                    "{{pod}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Volume use",
                "percentunit",
                (
                    'kubelet_volume_stats_used_bytes{namespace="tenant-$tenant"}'
                    ' / kubelet_volume_stats_capacity_bytes{namespace="tenant-$tenant"}',
                    "{{persistentvolumeclaim}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Age of the last successful backup",
                "s",
                (
                    f"time() - tenantry_operator_tenant_last_backup_timestamp_seconds{{{TENANT}}}",
                    "age",
                ),
            )
        )
    )


DASHBOARDS = {"operator-overview": operator_overview, "tenant-overview": tenant_overview}


def render(name: str) -> str:
    """The dashboard's JSON, as the chart ships it."""
    built = DASHBOARDS[name]().build()
    for number, panel in enumerate(built.panels or (), start=1):  # ids unique, in order
        panel.id_val = number
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (OUT / f"{name}.json").write_text(render(name))
        print(f"wrote {OUT / name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
