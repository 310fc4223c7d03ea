"""The tenant's ClickHouse schema as SQL, and `provision` to apply it idempotently.

Everything here but `provision` is a pure function of a `TenantSchema` (plain
values: database name, retention, cluster name, shards, replicas), so the
operator can call it with its normalised model without this package importing
the operator, and so the SQL is unit-tested as text and executed for real on
chDB in the integration tests.

Layout of a tenant's database:

- single node (no cluster, or 1 shard x 1 replica): `events`, a MergeTree.
- cluster (more than one shard or replica): `events_local`, a
  ReplicatedMergeTree on every host (`{shard}`/`{replica}` macros, created
  ON CLUSTER), and `events`, a Distributed table over it. Writers and dashboards
  always use `<db>.events`, whatever the layout.

Table design (see `events_table` for the ORDER BY reasoning):

- `PARTITION BY toYYYYMM(timestamp)`: monthly partitions, so TTL drops whole
  old parts cheaply and time-range queries prune partitions;
- `TTL timestamp + INTERVAL <retention> DAY`, changed in place with
  `ALTER TABLE ... MODIFY TTL` when the tenant's retention changes;
- a deduplication window, so the ingestion writer can retry a batch with the
  same `insert_deduplication_token` without duplicating rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tenantry.clickhouse.client import ClickHouseClient, quote_identifier, quote_string

# The version of the layout described here (tables, columns, engines). Every backup
# records the version it holds (operator: `backups.Manifest.schema_version`), so a
# restore can tell whether it needs a migration. Raise it with any change to the DDL.
SCHEMA_VERSION = 1

EVENTS = "events"
EVENTS_LOCAL = "events_local"
# Inserts remembered per table (or per partition on replicated tables) for
# deduplication; a writer retrying a batch must do so within this many inserts.
DEDUP_WINDOW = 1000
_TTL_DAYS = re.compile(r"\bTTL\s+timestamp\s*\+\s*toIntervalDay\((\d+)\)")

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "UUID"),
    ("timestamp", "DateTime64(3, 'UTC')"),
    ("event", "LowCardinality(String)"),
    ("user_id", "String"),
    ("properties", "String"),
    ("received_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
    ("batch_id", "String DEFAULT ''"),
)
"""Columns of the events table: the event itself, then ingestion metadata.

`properties` is the event's JSON object as text (query it with
JSONExtract*); `received_at` is when ingestion accepted it; `batch_id` the
ingestion batch (also its dedup token), for tracing a row to its insert.
"""


@dataclass(frozen=True)
class TenantSchema:
    """What the SQL depends on, as plain values."""

    database: str
    retention_days: int
    cluster: str | None = None
    shards: int = 1
    replicas: int = 1

    def __post_init__(self) -> None:
        quote_identifier(self.database)
        if self.cluster is not None:
            quote_identifier(self.cluster)
        if self.retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        if self.shards < 1 or self.replicas < 1:
            raise ValueError("shards and replicas must be at least 1")
        if self.cluster is None and (self.shards > 1 or self.replicas > 1):
            raise ValueError("more than one shard or replica needs a cluster name")

    @property
    def clustered(self) -> bool:
        """Replicated + Distributed when there is more than one host."""
        return self.cluster is not None and (self.shards > 1 or self.replicas > 1)

    @property
    def local_table(self) -> str:
        """The MergeTree-family table that stores rows on each host."""
        return EVENTS_LOCAL if self.clustered else EVENTS


def _on_cluster(schema: TenantSchema) -> str:
    if schema.clustered and schema.cluster is not None:
        return f" ON CLUSTER {quote_identifier(schema.cluster)}"
    return ""


def _table(schema: TenantSchema, name: str) -> str:
    return f"{quote_identifier(schema.database)}.{quote_identifier(name)}"


def create_database(schema: TenantSchema) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(schema.database)}{_on_cluster(schema)}"


def ttl_clause(retention_days: int) -> str:
    """Rows older than the retention are deleted; whole monthly parts drop cheaply."""
    return f"TTL timestamp + INTERVAL {int(retention_days)} DAY"


def events_engine(schema: TenantSchema) -> str:
    """MergeTree on one node; ReplicatedMergeTree keyed by shard and replica macros."""
    if not schema.clustered:
        return "MergeTree"
    path = f"/clickhouse/tables/{{shard}}/{schema.database}/{EVENTS}"
    return f"ReplicatedMergeTree({quote_string(path)}, '{{replica}}')"


def events_table(schema: TenantSchema) -> str:
    """CREATE TABLE for the table that stores events (`events` or `events_local`).

    ORDER BY (event, toDate(timestamp), user_id, timestamp), because dashboard
    panels almost always ask "how many <event> per day/hour over a range, how
    many distinct users":

    - `event` first: nearly every panel filters on one or a few event names, and
      it has few distinct values (LowCardinality), so the primary index skips
      everything else and the column compresses to almost nothing;
    - `toDate(timestamp)` next: within an event, a time range is a contiguous
      slice of the index (month partitions alone would read whole months);
    - `user_id` then: rows of one user sit together within a day, which makes
      `uniq(user_id)` and funnel/retention queries read sorted runs and
      compresses well;
    - `timestamp` last: rows of a user come in time order (funnels, sessions).

    A minmax skip index on `timestamp` serves panels that do not filter on the
    event name.
    """
    columns = ",\n    ".join(f"{quote_identifier(n)} {t}" for n, t in EVENT_COLUMNS)
    window_setting = (
        "replicated_deduplication_window"
        if schema.clustered
        else "non_replicated_deduplication_window"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {_table(schema, schema.local_table)}{_on_cluster(schema)}\n"
        f"(\n    {columns},\n"
        "    INDEX timestamp_minmax timestamp TYPE minmax GRANULARITY 1\n)\n"
        f"ENGINE = {events_engine(schema)}\n"
        "PARTITION BY toYYYYMM(timestamp)\n"
        "ORDER BY (event, toDate(timestamp), user_id, timestamp)\n"
        f"{ttl_clause(schema.retention_days)}\n"
        f"SETTINGS {window_setting} = {DEDUP_WINDOW}, index_granularity = 8192"
    )


def distributed_table(schema: TenantSchema) -> str | None:
    """`events` over `events_local` on every shard; None on a single node.

    Sharding key `cityHash64(user_id)`: all events of a user land on one shard,
    so per-user aggregates (uniq, funnels, retention) are complete on each shard
    and can be merged without moving rows; the hash spreads users evenly.
    """
    if not schema.clustered:
        return None
    assert schema.cluster is not None
    return (
        f"CREATE TABLE IF NOT EXISTS {_table(schema, EVENTS)}{_on_cluster(schema)}\n"
        f"AS {_table(schema, EVENTS_LOCAL)}\n"
        f"ENGINE = Distributed({quote_string(schema.cluster)}, "
        f"{quote_string(schema.database)}, {quote_string(EVENTS_LOCAL)}, cityHash64(user_id))"
    )


def modify_ttl(schema: TenantSchema) -> str:
    """ALTER for a retention change, applied in place (no table rebuild).

    ClickHouse materialises the new TTL on existing parts as a background
    mutation, so a shorter retention deletes old rows without blocking inserts.
    """
    return (
        f"ALTER TABLE {_table(schema, schema.local_table)}{_on_cluster(schema)} "
        f"MODIFY {ttl_clause(schema.retention_days)}"
    )


def schema_statements(schema: TenantSchema) -> list[str]:
    """Every CREATE for the tenant, in order; each is a no-op when already there."""
    statements = [create_database(schema), events_table(schema)]
    distributed = distributed_table(schema)
    if distributed is not None:
        statements.append(distributed)
    return statements


def materialized_view(
    schema: TenantSchema,
    *,
    name: str,
    select: str,
    order_by: str,
    engine: str = "AggregatingMergeTree",
    partition_by: str | None = None,
) -> str:
    """A materialized view over the events table, storing its own aggregate.

    `select` reads from `<db>.<local table>` (see `TenantSchema.local_table`)
    and typically yields `-State` aggregates, read back with `-Merge`
    functions; `engine` is a MergeTree-family engine name without arguments.
    On a cluster the view is created ON CLUSTER over the local table with the
    Replicated variant of the engine, so each shard aggregates its own rows;
    reading all shards at once then needs a Distributed table over the view.
    """
    quote_identifier(name)
    quote_identifier(engine)
    engine_sql = engine
    if schema.clustered:
        path = f"/clickhouse/tables/{{shard}}/{schema.database}/{name}"
        engine_sql = f"Replicated{engine}({quote_string(path)}, '{{replica}}')"
    partition = f"PARTITION BY {partition_by}\n" if partition_by else ""
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {_table(schema, name)}{_on_cluster(schema)}\n"
        f"ENGINE = {engine_sql}\n{partition}ORDER BY {order_by}\n"
        f"AS {select}"
    )


def drop_view(schema: TenantSchema, name: str) -> str:
    return f"DROP VIEW IF EXISTS {_table(schema, name)}{_on_cluster(schema)} SYNC"


def hosts_with_schema_query(schema: TenantSchema) -> tuple[str, dict[str, str]]:
    """SQL (and its parameters) listing the hosts that have the events table.

    On a cluster it reads every replica of every shard through
    `clusterAllReplicas`, so the operator can report in status which hosts have
    the schema (a new replica shows up once provisioning reached it).
    """
    source = "system.tables"
    if schema.clustered and schema.cluster is not None:
        source = f"clusterAllReplicas({quote_string(schema.cluster)}, system.tables)"
    sql = (
        f"SELECT DISTINCT hostName() AS host FROM {source} "  # noqa: S608 - checked identifier
        "WHERE database = {db:String} AND name = {table:String} ORDER BY host"
    )
    return sql, {"db": schema.database, "table": schema.local_table}


def hosts_with_schema(client: ClickHouseClient, schema: TenantSchema) -> list[str]:
    sql, params = hosts_with_schema_query(schema)
    return [str(row["host"]) for row in client.query(sql, params)]


def ttl_days_of(engine_full: str) -> int | None:
    """Retention days in a table's `system.tables.engine_full`, None without TTL."""
    match = _TTL_DAYS.search(engine_full)
    return int(match.group(1)) if match else None


@dataclass
class ProvisionReport:
    """What `provision` did: the statements it ran, whether it created the
    events table, and the retention it replaced when the TTL had drifted."""

    statements: list[str] = field(default_factory=list)
    created: bool = False
    ttl_altered: bool = False
    previous_ttl_days: int | None = None

    @property
    def changed(self) -> bool:
        return self.created or self.ttl_altered


def _engine_full(client: ClickHouseClient, schema: TenantSchema) -> str | None:
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": schema.database, "t": schema.local_table},
    )
    return str(rows[0]["engine_full"]) if rows else None


def provision(client: ClickHouseClient, schema: TenantSchema) -> ProvisionReport:
    """Create what is missing and fix TTL drift; a second call changes nothing.

    The CREATEs carry IF NOT EXISTS, so running them again is harmless. The TTL
    is read back from `system.tables.engine_full` (normalised by the engine,
    `timestamp + toIntervalDay(N)`) and ALTERed only when N differs from the
    wanted retention. On a cluster, this reads the host the client talks to;
    ON CLUSTER DDL carries the change to the others, and running `provision`
    again after a scale-up creates the tables on the new shards and replicas
    (every host of the cluster runs each IF NOT EXISTS statement).
    """
    report = ProvisionReport()
    before = _engine_full(client, schema)
    for statement in schema_statements(schema):
        client.command(statement)
        report.statements.append(statement)
    report.created = before is None
    engine_full = _engine_full(client, schema)
    if engine_full is None:
        raise RuntimeError(f"{schema.database}.{schema.local_table} missing after CREATE")
    current = ttl_days_of(engine_full)
    if current != schema.retention_days:
        statement = modify_ttl(schema)
        client.command(statement)
        report.statements.append(statement)
        report.ttl_altered = True
        report.previous_ttl_days = current
    return report
