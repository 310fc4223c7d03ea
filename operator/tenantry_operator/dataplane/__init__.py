"""The operator's data-plane steps: the tenant's schema and its dashboards, on ClickHouse.

The build/apply steps make a tenant's ClickHouse *run*; these steps make it
*useful*: a database with the events table once its hosts are Ready, and
Dashboards whose panel SQL is validated by the engine and whose materialized
panels have views. They sit beside reconcile (called by it and by the Dashboard
handler) and talk to ClickHouse only through `tenantry.clickhouse`.

- `connect`: the URL the operator opens (tenant Service as admin, or the
  `TENANTRY_CLICKHOUSE_URL_OVERRIDE` endpoint for local e2e), the per-tenant
  database name `t_<name>`, password redaction for logs;
- `schema_step`: `ensure_schema` (provision, idempotent) and `needs_schema`
  (pure: skip ClickHouse entirely when status says the schema is current);
- `panels`: pure SQL checks, parameter binding, view naming, error messages;
- `dashboards`: `reconcile_dashboard`, `unavailable`, `drop_dashboard`.

Wiring in `reconcile.reconcile`, after `new_status` is computed, only when its
`ClickHouseReady` condition is True (and the tenant is not suspended):

    recorded = (body.get("status") or {}).get("schema")
    if schema_step.needs_schema(body.get("status"), model):
        try:
            client = await connect.open_for_tenant(   # may raise ClickHouseError too
                kube, model, override=settings.clickhouse_override, scoped=False)
            if client is not None:                    # None: credentials Secret not there yet
                try:
                    result = await schema_step.ensure_schema(client, model)
                finally:
                    await asyncio.to_thread(client.close)
                recorded = result.status()
                events += [Event(reason, message) for reason, message in result.notices()]
        except ClickHouseError as err:   # hosts Ready but not answering yet
            not converged; say f"schema: {err}" in Progressing (log URLs only via redact_url)
    if recorded:
        new_status["schema"] = recorded

An idle tenant (status.schema matching its spec) makes no ClickHouse call.
`status.schema` is `{"database", "retentionDays", "shards", "replicas", "hosts"}`;
add "schema" to the keys `reconcile._comparable` keeps (and to the CRD status
schema), or every reconcile rewrites it. The Dashboard side is described in
`dashboards`' module docstring.
"""
