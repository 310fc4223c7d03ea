"""The tenant's ClickHouse schema as SQL, the same on every host of a layout.

Everything here is a pure function of a `TenantSchema` (plain values: database
name, retention, cluster name, shards, replicas), so the operator can call it with
its normalised model without this package importing the operator, and so the SQL is
unit-tested as text and executed for real on chDB in the integration tests.

Where DDL runs: on every host, one host at a time, never ON CLUSTER. The
operator runs `tenantry.clickhouse.layout.provision` (idempotent) through each
host's own Service, as the
Altinity operator's schema propagation does. So no layout needs Keeper for its
DDL, the operator knows exactly which host carries the schema (it labels that
host's pod, and only then does the host receive client traffic), and a host
added later gets the same statements as the first one did.

Layout of a tenant's database, per host:

- one host (1 shard x 1 replica): `events`, a ReplacingMergeTree.
- more than one host: `events_local` stores the rows and `events` is a
  Distributed table over it (`internal_replication`: one replica per shard
  receives each insert). `events_local` is a ReplacingMergeTree when each shard
  has one replica (N x 1: no Keeper at all), a ReplicatedReplacingMergeTree
  (`{shard}`/`{replica}` macros, Keeper) when shards have replicas (1 x M, N x M).

Writers and dashboards always use `<db>.events`, whatever the layout. A host
whose tables belong to another layout (a 1 x 1 tenant grown into a cluster, an
N x 1 tenant given replicas) is converted in place by `tenantry.clickhouse.layout`,
which moves every row into the new storing table exactly once.

Table design (see `events_table` for the ORDER BY reasoning):

- `PARTITION BY toYYYYMM(timestamp)`: monthly partitions, so TTL drops whole
  old parts cheaply and time-range queries prune partitions;
- `TTL timestamp + INTERVAL <retention> DAY`, changed in place with
  `ALTER TABLE ... MODIFY TTL` when the tenant's retention changes;
- a deduplication window, so the ingestion writer can retry a batch with the
  same `insert_deduplication_token` without duplicating rows;
- the ReplacingMergeTree engine with `event_id` in the sorting key, so an event a
  producer sent twice, in any two batches, is stored once (`events_table`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tenantry.clickhouse.client import quote_identifier, quote_string

# The version of the layout described here (tables, columns, engines). Every backup
# records the version it holds (operator: `backups.Manifest.schema_version`), so a
# restore can tell whether it needs a migration. Raise it with any change to the DDL.
# 2: the storing table is a ReplacingMergeTree ordered by `event_id` last (events sent
# twice are stored once; `tenantry.clickhouse.layout` converts version-1 tables).
SCHEMA_VERSION = 2

EVENTS = "events"
SHARDING_KEY = "cityHash64(user_id)"
"""The Distributed table's sharding key. With every shard's weight 1, a row goes to shard
`SHARDING_KEY % shards` (shards in `remote_servers` order); the restore places rows by
the same rule (operator: `restore_job`)."""
EVENTS_LOCAL = "events_local"
ORDER_BY = "(event, toDate(timestamp), user_id, timestamp, event_id)"
"""The storing table's sorting key, which is also its deduplication key (see
`events_table`)."""
ORDER_BY_V1 = "(event, toDate(timestamp), user_id, timestamp)"
"""Schema version 1's sorting key (without `event_id`; its engine was a plain
`MergeTree`): what `tenantry.clickhouse.layout` converts from, and what tests and
benchmarks build to show it."""
STORING_ENGINE = "ReplacingMergeTree"
"""The engine family of the table that stores events (`Replicated` prefixed where shards
have replicas). Version-1 tables were plain `MergeTree`s (see `deduplicates`)."""
KEEPER_TABLE = "events_v2"
"""The last element of a replicated storing table's Keeper path. Version-1 replicated
tables used `events`; the two exist side by side while a host converts, so they
cannot share a path."""
# Inserts remembered per table (or per partition on replicated tables) for
# deduplication; a writer retrying a batch must do so within this many inserts.
DEDUP_WINDOW = 1000
EVENTS_INSERT_SETTINGS: dict[str, int] = {"optimize_on_insert": 0}
"""The settings of the ingestion writer's inserts into `events`.

`optimize_on_insert = 0`: the engine does not collapse the copies of an event that
one insert holds while writing its part (the ReplacingMergeTree's merge run over
every inserted block, which cost about a fifth of the engine's CPU per row on the
writer's 200,000-row inserts: bench/README.md, "Ingestion: the unattributed 7 %").
Such copies are then treated as copies in different inserts always are: reads with
FINAL (the `reader` profile's and panel queries' `final = 1`) see the event once at
once, and the background merges store it once (`events_table`). Copies within one
insert are rare anyway: a producer's retry comes in a later batch, mostly a later
insert."""
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
        """`events_local` + Distributed `events` when there is more than one host."""
        return self.cluster is not None and (self.shards > 1 or self.replicas > 1)

    @property
    def replicated(self) -> bool:
        """ReplicatedMergeTree (hence Keeper) exactly when a shard has replicas."""
        return self.clustered and self.replicas > 1

    @property
    def local_table(self) -> str:
        """The MergeTree-family table that stores rows on each host."""
        return EVENTS_LOCAL if self.clustered else EVENTS


def table_name(schema: TenantSchema, name: str) -> str:
    """`<db>`.`<name>`, both quoted."""
    return f"{quote_identifier(schema.database)}.{quote_identifier(name)}"


def create_database(schema: TenantSchema) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(schema.database)}"


def ttl_clause(retention_days: int) -> str:
    """Rows older than the retention are deleted; whole monthly parts drop cheaply."""
    return f"TTL timestamp + INTERVAL {int(retention_days)} DAY"


def replicated_path(schema: TenantSchema, name: str) -> str:
    """The Keeper path of a replicated table: one per shard, shared by its replicas."""
    return f"/clickhouse/tables/{{shard}}/{schema.database}/{name}"


def deduplicates(engine: str) -> bool:
    """Whether a storing table's engine (`system.tables.engine`) is this version's,
    which keeps one row per sorting key, rather than version 1's plain MergeTree."""
    return STORING_ENGINE in engine


def storing_engine_name(*, replicated: bool) -> str:
    """The engine's name as `system.tables.engine` shows it."""
    return f"Replicated{STORING_ENGINE}" if replicated else STORING_ENGINE


def events_engine(schema: TenantSchema) -> str:
    """ReplacingMergeTree, or ReplicatedReplacingMergeTree keyed by the shard and
    replica macros when shards have replicas (Keeper path ending in `KEEPER_TABLE`)."""
    if not schema.replicated:
        return STORING_ENGINE
    path = quote_string(replicated_path(schema, KEEPER_TABLE))
    return f"{storing_engine_name(replicated=True)}({path}, '{{replica}}')"


def events_table(
    schema: TenantSchema,
    *,
    name: str | None = None,
    engine: str | None = None,
    order_by: str = ORDER_BY,
) -> str:
    """CREATE TABLE for the table that stores events (`events` or `events_local`).

    `name` and `engine` serve `tenantry.clickhouse.layout`, which builds tables of
    the same structure under other names while it converts a host (the structure
    must be identical for partitions to move between them). `engine="MergeTree"` with
    `order_by=ORDER_BY_V1` is schema version 1's table.

    ORDER BY (event, toDate(timestamp), user_id, timestamp, event_id), because
    dashboard panels almost always ask "how many <event> per day/hour over a range,
    how many distinct users":

    - `event` first: nearly every panel filters on one or a few event names, and
      it has few distinct values (LowCardinality), so the primary index skips
      everything else and the column compresses to almost nothing;
    - `toDate(timestamp)` next: within an event, a time range is a contiguous
      slice of the index (month partitions alone would read whole months);
    - `user_id` then: rows of one user sit together within a day, which makes
      `uniq(user_id)` and funnel/retention queries read sorted runs and
      compresses well;
    - `timestamp`: rows of a user come in time order (funnels, sessions);
    - `event_id` last, for deduplication: the engine is a ReplacingMergeTree, which
      keeps one row of those with the same sorting key. An event a producer sent
      twice (same `event_id`, name, user and time, in two batches, hours apart or
      through two pods) is one row once the engine has merged the parts that hold
      the copies (also copies within one insert: `EVENTS_INSERT_SETTINGS`), and
      one row at once for reads with FINAL, which the `reader`
      user's settings profile and panel queries apply (`final = 1`). Two events
      that share an `event_id` but differ in name, user or time are two rows.
      Merges happen within a partition (a month) on one host; the copies of an
      event share its month, and its shard (the sharding key is the user).

    A minmax skip index on `timestamp` serves panels that do not filter on the
    event name.
    """
    engine = engine or events_engine(schema)
    columns = ",\n    ".join(f"{quote_identifier(n)} {t}" for n, t in EVENT_COLUMNS)
    window_setting = (
        "replicated_deduplication_window"
        if engine.startswith("Replicated")
        else "non_replicated_deduplication_window"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {table_name(schema, name or schema.local_table)}\n"
        f"(\n    {columns},\n"
        "    INDEX timestamp_minmax timestamp TYPE minmax GRANULARITY 1\n)\n"
        f"ENGINE = {engine}\n"
        "PARTITION BY toYYYYMM(timestamp)\n"
        f"ORDER BY {order_by}\n"
        f"{ttl_clause(schema.retention_days)}\n"
        f"SETTINGS {window_setting} = {DEDUP_WINDOW}, index_granularity = 8192"
    )


def distributed_table(schema: TenantSchema, *, name: str = EVENTS) -> str | None:
    """`events` over `events_local` on every shard; None on a single node.

    Sharding key `cityHash64(user_id)`: all events of a user land on one shard,
    so per-user aggregates (uniq, funnels, retention) are complete on each shard
    and can be merged without moving rows; the hash spreads users evenly. The
    table names the cluster, not its hosts: a new shard in remote_servers (which
    ClickHouse reloads) is used without any DDL.
    """
    if not schema.clustered:
        return None
    assert schema.cluster is not None
    return (
        f"CREATE TABLE IF NOT EXISTS {table_name(schema, name)}\n"
        f"AS {table_name(schema, EVENTS_LOCAL)}\n"
        f"ENGINE = Distributed({quote_string(schema.cluster)}, "
        f"{quote_string(schema.database)}, {quote_string(EVENTS_LOCAL)}, {SHARDING_KEY})"
    )


def modify_ttl(schema: TenantSchema) -> str:
    """ALTER for a retention change, applied in place (no table rebuild).

    ClickHouse materialises the new TTL on existing parts as a background
    mutation, so a shorter retention deletes old rows without blocking inserts.
    Run on every host: on replicated tables the ALTER goes through Keeper to the
    other replicas too, and running it there again is a no-op.
    """
    return (
        f"ALTER TABLE {table_name(schema, schema.local_table)} "
        f"MODIFY {ttl_clause(schema.retention_days)}"
    )


def schema_statements(schema: TenantSchema) -> list[str]:
    """Every CREATE for a new host, in order; each is a no-op when already there."""
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
    Like every statement here it is run on each host: over the local table, with
    the Replicated variant of the engine where shards have replicas, so each
    shard aggregates its own rows; reading all shards at once then needs a
    Distributed table over the view.
    """
    quote_identifier(name)
    quote_identifier(engine)
    engine_sql = engine
    if schema.replicated:
        path = quote_string(replicated_path(schema, name))
        engine_sql = f"Replicated{engine}({path}, '{{replica}}')"
    partition = f"PARTITION BY {partition_by}\n" if partition_by else ""
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table_name(schema, name)}\n"
        f"ENGINE = {engine_sql}\n{partition}ORDER BY {order_by}\n"
        f"AS {select}"
    )


def drop_view(schema: TenantSchema, name: str) -> str:
    return f"DROP VIEW IF EXISTS {table_name(schema, name)} SYNC"


def ttl_days_of(engine_full: str) -> int | None:
    """Retention days in a table's `system.tables.engine_full`, None without TTL."""
    match = _TTL_DAYS.search(engine_full)
    return int(match.group(1)) if match else None
