"""The operator's data-plane steps: the tenant's schema and its dashboards, on ClickHouse.

The build/apply steps make a tenant's ClickHouse *run*; these steps make it
*useful*: a database with the events table on each host once it is Ready, and
Dashboards whose panel SQL is validated by the engine and whose materialized
panels have views. They sit beside reconcile (called by it and by the Dashboard
handler) and talk to ClickHouse only through `tenantry.clickhouse`.

- `connect`: the URL the operator opens (a host's own Service or the tenant's
  `clickhouse` Service, as admin, or the `TENANTRY_CLICKHOUSE_URL_OVERRIDE` endpoint for
  local e2e), the per-tenant database name `t_<name>`, password redaction for logs;
- `schema_step`: `ensure_schema` (provision one host, idempotent) and
  `hosts_to_provision` (pure: which hosts, from status and the pods' readiness and
  schema label; none when the schema is current everywhere);
- panel SQL rules (pure checks, parameter binding, view naming, error messages) are
  `tenantry.dashboards.panels`, shared with the control plane;
- `dashboards`: `reconcile_dashboard`, `unavailable`, `drop_dashboard`.

Called from `reconcile._schema` (the schema on each host whose pod is Ready, then the
pod's `tenantry.io/schema=ready` label, unless the tenant is suspended; a host that
does not answer yet leaves the Tenant Progressing with reason `SchemaPending`, retried
with a backoff) and from `dashboard_worker` (the Dashboards).

An idle tenant (status.schema matching its spec, every Ready pod labelled) makes no
ClickHouse call and no write. `status.schema` is `{"database", "retentionDays",
"shards", "replicas", "hosts"}`, `hosts` naming the hosts provisioned (kept by
`reconcile.comparable`, so an unchanged one is never rewritten).
"""
