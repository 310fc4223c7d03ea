"""Dashboard reconciliation on the tenant's ClickHouse: validate panels, keep their views.

Every panel's SQL is judged here, by the safety check and by the engine, and the
control plane runs only panels this marked valid:

1. `panels.single_statement` refuses a second statement before anything is sent;
2. `sql_safety.check_sql` judges safety on sqlglot's parse tree of the panel's text, in
   this process, before the engine sees it: one read-only SELECT that reads only the
   tenant's database (no INSERT/ALTER/DROP/SYSTEM, no `url(`/`file(`/`s3(`/
   `remote(`/`dictGet(`, no `other_db.table` or `system.*`, no
   SETTINGS/FORMAT/INTO OUTFILE). What sqlglot cannot parse is refused; the
   engine's parser (`EXPLAIN AST`, which parses and runs nothing, its output
   unread) is asked first, so a plain syntax error gets the engine's message with
   the line and column of the panel's SQL;
3. `EXPLAIN` plans it against the tenant's schema (unknown columns, tables,
   functions, types), with `{name:Type}` parameters bound to the variables'
   defaults and `{from:DateTime}`/`{to:DateTime}` to the dashboard's time range.
   Planning runs scalar subqueries, which is why it comes after step 2.

A panel with `materialize: true` gets a materialized view `mv_<dashboard>_<panel>`
in the tenant database: the panel's SQL run on every insert into `events`, its rows
kept in a MergeTree (on a single node the view is POPULATEd from the rows already
there). On replicated shards the view is created ON CLUSTER (Keeper runs there); on
N shards x 1 replica, which run no Keeper, materialized panels are refused (the
schema's own DDL runs host by host; views do not yet). A view's comment records its
dashboard, panel and a hash of the SQL: a changed SQL drops and recreates the view;
views of this dashboard whose panel is gone or no longer materialized are dropped.
Because ClickHouse runs the SELECT per insert block, the view holds partial results
per block: readers aggregate again (`sum` of counts), or panels use `-State`
aggregates read back with `-Merge`. A materialized panel cannot use variables or the
time range (nothing binds them on insert); filter when reading the view. A
materialized panel whose SQL turns invalid keeps its last view (a typo must not drop
data) and says so in its message.

Called by `dashboard_worker` (the kopf handlers): a tenant that is not Ready gives
`unavailable` (panels keep their last known status) and a retry; otherwise
`reconcile_dashboard` on a scoped client; on deletion `drop_dashboard` drops the
views while the tenant still exists (if it is gone, its database went with it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenantry.api.dashboard import DashboardSpec, Panel
from tenantry.clickhouse.client import (
    ClickHouseClient,
    ClickHouseError,
    quote_identifier,
    quote_string,
)
from tenantry.clickhouse.schema import TenantSchema
from tenantry.dashboards import panels
from tenantry_operator.conditions import Cond, set_conditions
from tenantry_operator.dataplane.schema_step import STATUS_KEY, tenant_schema
from tenantry_operator.model import TenantModel

Obj = dict[str, Any]
_AST_PREFIX = "EXPLAIN AST "
_PLAN_PREFIX = "EXPLAIN "
# Planning runs scalar subqueries, so the plan check is bounded and read-only. Panels
# cannot carry SETTINGS themselves (`sql_safety.check_sql`), so this clause is the only one.
VALIDATION_SECONDS = 10
TIMEOUT_EXCEEDED = 159
_PLAN_SETTINGS = f"\nSETTINGS readonly = 1, max_execution_time = {VALIDATION_SECONDS}"


class DataPlaneUnavailable(Exception):
    """ClickHouse could not answer (unreachable, database missing): retry later."""


@dataclass(frozen=True)
class Notice:
    """Something worth a Kubernetes Event on the Dashboard."""

    reason: str
    message: str
    warning: bool = False


@dataclass
class DashboardOutcome:
    """Per-panel statuses, conditions and notices of one reconcile."""

    panels: list[Obj]
    conditions: list[Cond]
    notices: list[Notice] = field(default_factory=list)
    views_created: list[str] = field(default_factory=list)
    views_dropped: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return all(p["valid"] for p in self.panels)

    def status(self, *, generation: int | None, previous: Mapping[str, Any] | None) -> Obj:
        """The Dashboard's status; a condition's lastTransitionTime moves only on change."""
        rendered = set_conditions(
            (previous or {}).get("conditions"), self.conditions, generation=generation
        )
        valid = sum(1 for p in self.panels if p["valid"])
        return {
            "observedGeneration": generation,
            "conditions": rendered,
            "panels": self.panels,
            "panelsValid": f"{valid}/{len(self.panels)}",
        }


def _panel_status(panel_id: str, *, valid: bool, message: str = "", view: str | None = None) -> Obj:
    """A `status.panels` item (PanelStatus); `materializedView` only when there is one,
    since the CRD's schema types it as a string (no null)."""
    status: Obj = {"id": panel_id, "valid": valid, "message": message}
    if view is not None:
        status["materializedView"] = view
    return status


def unavailable(
    *, tenant_name: str, tenant_exists: bool, previous: Sequence[Mapping[str, Any]]
) -> DashboardOutcome:
    """The outcome when the tenant is missing or not Ready: no ClickHouse call made.

    Panel statuses keep their last known values (a brief outage does not make
    valid panels look invalid).
    """
    if tenant_exists:
        reason = "TenantNotReady"
        message = f"Tenant {tenant_name} is not Ready; panels are validated once it is"
    else:
        reason = "TenantNotFound"
        message = f"Tenant {tenant_name} does not exist; create it or fix spec.tenantRef.name"
    return DashboardOutcome(
        panels=[dict(p) for p in previous],
        conditions=[
            Cond("Ready", False, reason, message),
            Cond("Valid", None, reason, "not validated: " + message),
        ],
        notices=[Notice(reason, message, warning=True)],
    )


def tenant_ready(tenant_status: Mapping[str, Any] | None) -> bool:
    """Whether a Tenant (by its status) can serve dashboards: ClickHouse Ready and
    the schema recorded as provisioned (`status.schema`, see `schema_step`)."""
    status = tenant_status or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    schema = status.get(STATUS_KEY)
    return (
        conditions.get("ClickHouseReady") == "True"
        and isinstance(schema, Mapping)
        and bool(schema.get("hosts"))
    )


# -- ClickHouse calls (blocking; run in a thread) ---------------------------------------


def _transient(error: ClickHouseError) -> bool:
    return error.code in panels.TRANSIENT_CODES


def _explain(
    client: ClickHouseClient,
    sql: str,
    *,
    prefix: str,
    params: Mapping[str, str],
    suffix: str = "",
) -> list[str]:
    try:
        rows = client.query(prefix + sql + suffix, params or None)
    except ClickHouseError as err:
        if err.code == TIMEOUT_EXCEEDED:
            raise panels.PanelError(
                f"validating the panel took longer than {VALIDATION_SECONDS} s (scalar "
                "subqueries run while a query is planned): simplify it"
            ) from err
        if _transient(err):
            raise DataPlaneUnavailable(str(err)) from err
        raise panels.PanelError(panels.friendly_error(err, sql=sql, prefix=prefix)) from err
    return [str(next(iter(row.values()))) for row in rows]


def validate_sql(
    client: ClickHouseClient, sql: str, *, spec: DashboardSpec, database: str, when: dt.datetime
) -> tuple[str, dict[str, str]]:
    """The panel's SQL (trailing ';' removed) and its parameter values; PanelError if bad."""
    # Imported where a panel is first judged, not with the operator: sqlglot costs about
    # 37 MiB of memory, which an operator with no Dashboard never needs (as boto3, s3.py).
    from tenantry.dashboards import sql_safety

    body = panels.single_statement(sql)
    params = panels.parameter_values(
        panels.query_parameters(body),
        variables=spec.variables,
        time_range=spec.time_range,
        now=when,
    )
    try:
        sql_safety.check_sql(body, database=database)
    except sql_safety.UnreadableSQL:
        # The engine's parser says why when the SQL is not ClickHouse at all (its
        # syntax error, positioned in the panel's SQL); when it parses, the SQL uses
        # syntax sqlglot lacks and stays refused: nothing unchecked runs.
        _explain(client, body, prefix=_AST_PREFIX, params=params)
        raise
    _explain(client, body, prefix=_PLAN_PREFIX, params=params, suffix=_PLAN_SETTINGS)
    return body, params


@dataclass(frozen=True)
class _View:
    name: str
    owner: panels.ViewOwner | None


def _views(client: ClickHouseClient, database: str) -> dict[str, _View]:
    rows = client.query(
        "SELECT name, comment FROM system.tables "
        "WHERE database = {db:String} AND engine = 'MaterializedView'",
        {"db": database},
    )
    return {
        str(r["name"]): _View(str(r["name"]), panels.parse_view_comment(str(r["comment"] or "")))
        for r in rows
    }


def _on_cluster(schema: TenantSchema) -> str:
    """Views are the one DDL still sent ON CLUSTER, and only where Keeper runs (shards
    with replicas: cluster.xml then carries `<zookeeper>` and `<distributed_ddl>`)."""
    if schema.replicated and schema.cluster is not None:
        return f" ON CLUSTER {quote_identifier(schema.cluster)}"
    return ""


def views_supported(schema: TenantSchema) -> bool:
    """Materialized views on this layout: one host, or replicated shards (ON CLUSTER
    through Keeper). N x 1 runs no Keeper, and views are not yet created host by host
    as the schema is, so they are refused there rather than made on one host only."""
    return not schema.clustered or schema.replicated


def create_view_sql(
    schema: TenantSchema, *, name: str, select: str, owner: panels.ViewOwner
) -> str:
    """CREATE MATERIALIZED VIEW for a panel (Replicated engine and no POPULATE on clusters)."""
    if not views_supported(schema):
        raise ValueError(f"no materialized views on {schema.shards} shards x 1 replica")
    table = f"{quote_identifier(schema.database)}.{quote_identifier(name)}"
    engine = "MergeTree"
    populate = " POPULATE"
    if schema.replicated:
        path = f"/clickhouse/tables/{{shard}}/{schema.database}/{name}"
        engine = f"ReplicatedMergeTree({quote_string(path)}, '{{replica}}')"
        populate = ""
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table}{_on_cluster(schema)}\n"
        f"ENGINE = {engine} ORDER BY tuple(){populate}\n"
        f"AS {select}\n"
        f"COMMENT {quote_string(panels.view_comment(owner))}"
    )


def drop_view_sql(schema: TenantSchema, name: str) -> str:
    table = f"{quote_identifier(schema.database)}.{quote_identifier(name)}"
    return f"DROP VIEW IF EXISTS {table}{_on_cluster(schema)} SYNC"


def _command(client: ClickHouseClient, sql: str) -> None:
    try:
        client.command(sql)
    except ClickHouseError as err:
        if _transient(err):
            raise DataPlaneUnavailable(str(err)) from err
        raise


def _check_database(client: ClickHouseClient, database: str) -> None:
    try:
        rows = client.query("SELECT currentDatabase() AS db")
    except ClickHouseError as err:
        raise DataPlaneUnavailable(str(err)) from err
    current = str(rows[0]["db"]) if rows else ""
    if current != database:
        raise ValueError(
            f"the client's current database is {current!r}, not {database!r}: "
            "open it with tenantry.clickhouse.open_tenant_client"
        )


@dataclass
class _Run:
    """The state one reconcile builds up while it walks the panels."""

    client: ClickHouseClient
    schema: TenantSchema
    dashboard: str
    views: dict[str, _View]
    outcome: DashboardOutcome


def _ensure_view(run: _Run, panel: Panel, select: str) -> tuple[str | None, str]:
    """The panel's view name once it exists with this SQL, or None and why not."""
    name = panels.view_name(run.dashboard, panel.id)
    owner = panels.ViewOwner(run.dashboard, panel.id, panels.sql_hash(select))
    existing = run.views.get(name)
    if existing is not None and existing.owner == owner:
        return name, ""
    if existing is not None and (
        existing.owner is None or existing.owner.dashboard != run.dashboard
    ):
        who = (
            f"dashboard {existing.owner.dashboard} panel {existing.owner.panel}"
            if existing.owner
            else "something the operator did not create"
        )
        return None, f"view name {name} is taken by {who}; rename the panel"
    try:
        if existing is not None:
            _command(run.client, drop_view_sql(run.schema, name))
            run.outcome.views_dropped.append(name)
        _command(run.client, create_view_sql(run.schema, name=name, select=select, owner=owner))
    except ClickHouseError as err:
        message = panels.friendly_error(err, sql=select)
        return None, f"materialized view {name} could not be created: {message}"
    run.outcome.views_created.append(name)
    run.outcome.notices.append(
        Notice("ViewRecreated" if existing else "ViewCreated", f"{name} for panel {panel.id}")
    )
    run.views[name] = _View(name, owner)
    return name, ""


def _last_good_view(run: _Run, panel: Panel) -> str | None:
    """The view an invalid materialized panel keeps: a typo must not drop its data."""
    if not panel.materialize:
        return None
    name = panels.view_name(run.dashboard, panel.id)
    found = run.views.get(name)
    if found is None or found.owner is None:
        return None
    if (found.owner.dashboard, found.owner.panel) != (run.dashboard, panel.id):
        return None
    return name


def _reconcile(
    client: ClickHouseClient,
    *,
    tenant: TenantModel,
    name: str,
    spec: DashboardSpec,
    previous: Sequence[Mapping[str, Any]],
    when: dt.datetime,
) -> DashboardOutcome:
    schema = tenant_schema(tenant)
    _check_database(client, schema.database)
    run = _Run(client, schema, name, _views(client, schema.database), DashboardOutcome([], []))
    kept: set[str] = set()
    view_failures = 0
    for panel in spec.panels:
        try:
            select, params = validate_sql(
                client, panel.sql, spec=spec, database=schema.database, when=when
            )
            if panel.materialize and params:
                raise panels.PanelError(
                    "a materialized panel cannot use variables or {from}/{to} (nothing binds "
                    "them when events are inserted): remove them or set materialize: false"
                )
            if panel.materialize and not views_supported(schema):
                raise panels.PanelError(
                    f"materialized panels need one host or replicated shards; this tenant has "
                    f"{schema.shards} shards x 1 replica: set materialize: false"
                )
        except panels.PanelError as err:
            kept_view = _last_good_view(run, panel)
            message = str(err)
            if kept_view is not None:
                kept.add(kept_view)
                message += f" (view {kept_view} keeps the last valid SQL until this is fixed)"
            run.outcome.panels.append(
                _panel_status(panel.id, valid=False, message=message, view=kept_view)
            )
            continue
        view: str | None = None
        message = ""
        if panel.materialize:
            view, message = _ensure_view(run, panel, select)
            if view is None:
                view_failures += 1
            else:
                kept.add(view)
        run.outcome.panels.append(_panel_status(panel.id, valid=True, message=message, view=view))
    for view_name, found in sorted(run.views.items()):
        owner = found.owner
        if owner is None or owner.dashboard != name or view_name in kept:
            continue
        _command(client, drop_view_sql(schema, view_name))
        run.outcome.views_dropped.append(view_name)
        run.outcome.notices.append(Notice("ViewDropped", f"{view_name}: panel {owner.panel}"))
    _finish(run.outcome, previous=previous, view_failures=view_failures)
    return run.outcome


def _finish(
    outcome: DashboardOutcome, *, previous: Sequence[Mapping[str, Any]], view_failures: int
) -> None:
    invalid = [p for p in outcome.panels if not p["valid"]]
    total = len(outcome.panels)
    if invalid:
        ids = ", ".join(p["id"] for p in invalid)
        valid = Cond("Valid", False, "InvalidPanels", f"{len(invalid)}/{total} invalid: {ids}")
    else:
        valid = Cond("Valid", True, "AllPanelsValid", f"{total}/{total} panels valid")
    if view_failures:
        ready = Cond("Ready", False, "ViewFailed", f"{view_failures} materialized view(s) failed")
    elif invalid:
        ready = Cond("Ready", False, "InvalidPanels", valid.message)
    else:
        ready = Cond("Ready", True, "Ready", f"{total} panels ready")
    outcome.conditions = [ready, valid]
    before = {str(p.get("id")): p for p in previous}
    for panel in invalid:
        old = before.get(panel["id"])
        if old is None or old.get("valid") or old.get("message") != panel["message"]:
            outcome.notices.append(
                Notice("InvalidPanel", f"panel {panel['id']}: {panel['message']}", warning=True)
            )


async def reconcile_dashboard(
    client: ClickHouseClient,
    *,
    tenant: TenantModel,
    name: str,
    spec: DashboardSpec,
    previous: Sequence[Mapping[str, Any]],
    now: dt.datetime | None = None,
) -> DashboardOutcome:
    """Validate every panel and converge the dashboard's materialized views.

    `client` must have the tenant's database as its current database
    (`tenantry.clickhouse.open_tenant_client`); `previous` is the last `status.panels`
    (for events on changes); `now` anchors the time range (tests).
    Raises DataPlaneUnavailable when ClickHouse cannot answer.
    """
    if spec.tenant_ref.name != tenant.name:
        raise ValueError(f"dashboard {name} refers to {spec.tenant_ref.name}, not {tenant.name}")
    return await asyncio.to_thread(
        _reconcile,
        client,
        tenant=tenant,
        name=name,
        spec=spec,
        previous=previous,
        when=now or dt.datetime.now(dt.UTC),
    )


def _drop_all(client: ClickHouseClient, schema: TenantSchema, name: str) -> list[str]:
    dropped = []
    for view_name, found in sorted(_views(client, schema.database).items()):
        if found.owner is not None and found.owner.dashboard == name:
            _command(client, drop_view_sql(schema, view_name))
            dropped.append(view_name)
    return dropped


async def drop_dashboard(client: ClickHouseClient, *, tenant: TenantModel, name: str) -> list[str]:
    """Drop every view the dashboard owns (by the comment); return their names.

    Any client on the tenant's ClickHouse works: statements name the database.
    """
    schema = tenant_schema(tenant)
    try:
        return await asyncio.to_thread(_drop_all, client, schema, name)
    except ClickHouseError as err:
        if err.name == "UNKNOWN_DATABASE" or err.code == 81:
            return []  # nothing left to drop
        raise
