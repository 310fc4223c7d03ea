"""One host's tables brought to a layout, moving every row into it exactly once.

`provision` is what the operator runs on each host (through that host's own
Service): the database, the tables of the tenant's layout (`tenantry.clickhouse.schema`),
and, when the host still holds another layout's tables, their conversion. Three
conversions exist, two from a layout with fewer hosts and one from an older schema:

- **`events` is a MergeTree but the layout is a cluster** (a 1 x 1 tenant grown to
  N x 1, 1 x M or N x M; only ch-s0-r0 has this): the rows must end up in
  `events_local`, and `events` must become the Distributed table.
- **`events_local` is a MergeTree but shards now have replicas** (N x 1 -> N x M):
  the rows must end up in a ReplicatedMergeTree `events_local`.
- **The storing table is schema version 1's** (a plain MergeTree, sorted without
  `event_id`; `schema.deduplicates`): the rows must end up in this version's
  ReplacingMergeTree. Partitions cannot move between tables sorted differently, so
  the rows are copied (`INSERT ... SELECT`) into `events_stage` (this version's
  structure, watched by no materialized view) and the old table is dropped right
  after (`Step.then`); the stage's partitions then move into the storing table as
  in step 4 below, which no materialized view sees either, so dashboards' views do
  not count the old rows a second time. A copy cut short by a kill is made again in
  full on the next run; the rows it had already copied are then there twice, with
  the same sorting key (which ends in `event_id`), so the engine keeps one of each
  (at once for reads with FINAL, as the `reader` user's, and for good at the next
  merge). On a single
  host the new table is built as `events_upgrade` and exchanged with `events`; on a
  cluster `events_local` goes the way of the N x 1 -> N x M conversion below (a
  `_next` table, the exchange, `events_move`), and is then copied. A replicated old
  table is dropped per replica (DROP TABLE leaves the other replicas' copies), so
  each replica copies what it holds, and rows two replicas both copy are kept once.

How, and why it survives being killed at any point: `next_step` is a pure function
of what the host holds (table engines, and the partitions with active parts) that
returns the one next statement, and `converge` runs one, looks again, runs the
next. Each statement is atomic in ClickHouse or idempotent, and the state after it
tells the next run what is left, so an operator killed between two statements (or a
host restarted) finishes the job on its next run without losing or repeating a row:

1. The new storing table is created empty (`CREATE ... IF NOT EXISTS`: repeatable).
2. The new table is built beside the old one under a `_next` name, then
   `EXCHANGE TABLES` swaps the two names in one atomic step, so writers never see
   `events` missing: before it they write to the old table, after it to the new one.
   A run that finds the wanted engine under the real name and the old one under
   `_next` knows the exchange happened.
3. The old table, renamed `events_move` (one `RENAME`, atomic), receives no more
   writes: nothing names it.
4. Its rows move partition by partition into `events_local`:
   - same engine family (MergeTree to MergeTree): `ALTER TABLE events_move MOVE
     PARTITION ... TO TABLE events_local`, one statement that takes the parts out of
     one table and into the other. A rerun finds the partition in exactly one of them.
   - MergeTree to ReplicatedMergeTree, which `MOVE PARTITION` refuses: through two
     staging tables, one step per statement: `MOVE PARTITION` into `events_stage`
     (a MergeTree, atomic as above); `REPLACE PARTITION` into
     `events_stage_replicated` (a ReplicatedMergeTree of this host alone) from
     `events_stage`, a copy that is idempotent because it replaces; `DROP
     PARTITION` from `events_stage`; `MOVE PARTITION` from `events_stage_replicated`
     into `events_local` (same family, atomic, and the replicas fetch it). A rerun
     reads where a partition is: only in the replicated stage, so it moves on; in
     both stages, so the copy is complete (the plain stage gains a partition only
     while both stages are empty); only in the plain stage, so the copy is
     (re)made. No partition is ever in two places that both count.
5. When the old table and the stages hold no part, they are dropped.

What this does not cover: a ClickHouse server that crashes *inside* one statement
(each is atomic in the engine, which is outside this code); an INSERT that started
before the exchange and is still running after everything was moved and the old
table dropped (the move of one partition takes milliseconds; such an insert fails
or lands in a dropped table: ingestion retries an insert that failed, with its
deduplication token). Going back to fewer hosts (scale-in) is refused by the
operator unless data loss is allowed, and is not converted here (`LayoutError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tenantry.clickhouse import schema
from tenantry.clickhouse.client import ClickHouseClient, quote_identifier, quote_string
from tenantry.clickhouse.schema import EVENTS, EVENTS_LOCAL, TenantSchema

EVENTS_NEXT = "events_next"
"""The Distributed `events`, built beside a MergeTree `events` before the exchange."""
EVENTS_LOCAL_NEXT = "events_local_next"
"""`events_local` in the wanted engine, built beside the old one before the exchange."""
EVENTS_MOVE = "events_move"
"""The old storing table after the exchange: its rows move into `events_local`."""
EVENTS_STAGE = "events_stage"
"""MergeTree: one partition on its way from `events_move` to a replicated table."""
EVENTS_STAGE_REPLICATED = "events_stage_replicated"
"""ReplicatedMergeTree of this host alone: the same partition, before it moves."""
EVENTS_UPGRADE = "events_upgrade"
"""One host: this version's `events`, built beside a version-1 `events` and exchanged
with it; the old table is then copied from under this name and dropped."""
CONVERSION_TABLES = (
    EVENTS_NEXT,
    EVENTS_LOCAL_NEXT,
    EVENTS_MOVE,
    EVENTS_STAGE,
    EVENTS_STAGE_REPLICATED,
)
_OURS = (EVENTS, EVENTS_LOCAL, EVENTS_UPGRADE, *CONVERSION_TABLES)
MAX_STEPS = 100_000  # a bound on one `converge`, far above any tenant's partitions x 4


class LayoutError(RuntimeError):
    """The host holds tables this code cannot convert into the wanted layout."""


@dataclass(frozen=True)
class Observed:
    """What one host holds of the tenant's database."""

    engines: Mapping[str, str]  # table -> engine (system.tables.engine), ours only
    partitions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # table -> partition ids with rows in active parts (a partition moved or dropped
    # leaves an empty covering part behind, which holds nothing)

    def parts(self, table: str) -> frozenset[str]:
        return self.partitions.get(table, frozenset())


@dataclass(frozen=True)
class Step:
    """One statement of a conversion, with what it does in plain fields."""

    op: Literal[
        "create", "exchange", "rename", "move", "copy", "copy_rows", "drop_partition", "drop"
    ]
    table: str
    sql: str
    other: str = ""  # the exchange partner, or the target of rename, move and copy
    partition: str = ""
    engine: str = ""  # what `create` creates: (Replicated)ReplacingMergeTree, Distributed
    then: str = ""  # run right after `sql` (copy_rows: dropping the table copied)

    @property
    def statements(self) -> tuple[str, ...]:
        return (self.sql, self.then) if self.then else (self.sql,)

    @property
    def moves(self) -> bool:
        """A partition leaves `events_move` (counted in the report)."""
        return self.op == "move" and self.table == EVENTS_MOVE

    @property
    def what(self) -> str:
        part = f" partition {self.partition}" if self.partition else ""
        engine = f" ({self.engine})" if self.engine else ""
        other = f" -> {self.other}" if self.other else ""
        return f"{self.op}{part} {self.table}{engine}{other}"


def _replicated(engine: str) -> bool:
    return engine.startswith("Replicated")


def _storing(engine: str) -> bool:
    return engine.endswith("MergeTree")


def _t(wanted: TenantSchema, name: str) -> str:
    return schema.table_name(wanted, name)


def _move(wanted: TenantSchema, source: str, partition: str, target: str) -> Step:
    sql = (
        f"ALTER TABLE {_t(wanted, source)} MOVE PARTITION ID {quote_string(partition)} "
        f"TO TABLE {_t(wanted, target)}"
    )
    return Step("move", source, sql, other=target, partition=partition)


def _drop(wanted: TenantSchema, table: str) -> Step:
    return Step("drop", table, f"DROP TABLE IF EXISTS {_t(wanted, table)} SYNC")


def _rename(wanted: TenantSchema, old: str, new: str) -> Step:
    return Step("rename", old, f"RENAME TABLE {_t(wanted, old)} TO {_t(wanted, new)}", other=new)


def _exchange(wanted: TenantSchema, one: str, other: str) -> Step:
    sql = f"EXCHANGE TABLES {_t(wanted, one)} AND {_t(wanted, other)}"
    return Step("exchange", one, sql, other=other)


def _create(table: str, sql: str, engine: str) -> Step:
    return Step("create", table, sql, engine=engine)


def _copy_rows(wanted: TenantSchema, source: str, target: str) -> Step:
    """Every row of `source` into `target`, then `source` dropped (see the module
    docstring: the third conversion)."""
    columns = ", ".join(quote_identifier(name) for name, _ in schema.EVENT_COLUMNS)
    into, source_table = _t(wanted, target), _t(wanted, source)  # quoted identifiers
    sql = f"INSERT INTO {into} ({columns}) SELECT {columns} FROM {source_table}"  # noqa: S608
    return Step("copy_rows", source, sql, other=target, then=_drop(wanted, source).sql)


def _family(replicated: bool) -> str:
    return schema.storing_engine_name(replicated=replicated)


def stage_replicated_engine(wanted: TenantSchema) -> str:
    """A Keeper path of this host alone, so the stage is never replicated elsewhere."""
    path = quote_string(schema.replicated_path(wanted, EVENTS_STAGE_REPLICATED) + "/{replica}")
    return f"{_family(True)}({path}, '{{replica}}')"


def _drain_step(wanted: TenantSchema, seen: Observed) -> Step | None:
    """The next statement moving `events_move`'s rows into `events_local`, or None
    once the conversion tables are gone (see the module docstring, step 4)."""
    engines = seen.engines
    target_replicated = _replicated(engines[EVENTS_LOCAL])
    staged, staged_replicated = seen.parts(EVENTS_STAGE), seen.parts(EVENTS_STAGE_REPLICATED)
    for partition in sorted(staged_replicated - staged):
        return _move(wanted, EVENTS_STAGE_REPLICATED, partition, EVENTS_LOCAL)
    for partition in sorted(staged):
        if not target_replicated:  # copied rows of version 1 (the third conversion)
            return _move(wanted, EVENTS_STAGE, partition, EVENTS_LOCAL)
        quoted = quote_string(partition)
        if partition in staged_replicated:  # copied: the plain stage lets go of it
            sql = f"ALTER TABLE {_t(wanted, EVENTS_STAGE)} DROP PARTITION ID {quoted}"
            return Step("drop_partition", EVENTS_STAGE, sql, partition=partition)
        sql = (
            f"ALTER TABLE {_t(wanted, EVENTS_STAGE_REPLICATED)} REPLACE PARTITION ID {quoted} "
            f"FROM {_t(wanted, EVENTS_STAGE)}"
        )
        return Step("copy", EVENTS_STAGE, sql, other=EVENTS_STAGE_REPLICATED, partition=partition)
    pending = seen.parts(EVENTS_MOVE)
    if EVENTS_MOVE in engines and pending:
        partition = min(pending)
        source_replicated = _replicated(engines[EVENTS_MOVE])
        if source_replicated and not target_replicated:
            raise LayoutError(
                f"{wanted.database}.{EVENTS_MOVE} is replicated but {EVENTS_LOCAL} is not: "
                "removing replicas is not converted in place"
            )
        old = not schema.deduplicates(engines[EVENTS_MOVE])  # schema version 1
        if source_replicated == target_replicated and not old:
            return _move(wanted, EVENTS_MOVE, partition, EVENTS_LOCAL)
        create = _create_stages(wanted, engines, replicated=target_replicated)
        if create is not None:
            return create
        if old:
            return _copy_rows(wanted, EVENTS_MOVE, EVENTS_STAGE)
        return _move(wanted, EVENTS_MOVE, partition, EVENTS_STAGE)
    for table in (EVENTS_MOVE, EVENTS_STAGE, EVENTS_STAGE_REPLICATED):
        if table in engines:
            return _drop(wanted, table)
    return None


def _create_stages(
    wanted: TenantSchema, engines: Mapping[str, str], *, replicated: bool
) -> Step | None:
    """Creating the stage a partition goes through when it cannot move straight into
    the storing table (and its replicated twin for a replicated one); None when there."""
    if EVENTS_STAGE not in engines:
        sql = schema.events_table(wanted, name=EVENTS_STAGE, engine=_family(False))
        return _create(EVENTS_STAGE, sql, _family(False))
    if replicated and EVENTS_STAGE_REPLICATED not in engines:
        sql = schema.events_table(
            wanted, name=EVENTS_STAGE_REPLICATED, engine=stage_replicated_engine(wanted)
        )
        return _create(EVENTS_STAGE_REPLICATED, sql, _family(True))
    return None


def _single_node_step(wanted: TenantSchema, seen: Observed) -> Step | None:
    engines = seen.engines
    leftovers = [t for t in (EVENTS_LOCAL, *CONVERSION_TABLES) if t in engines]
    leftovers = [t for t in leftovers if t != EVENTS_STAGE]  # the third conversion's
    if engines.get(EVENTS) == "Distributed" or leftovers:
        raise LayoutError(
            f"{wanted.database} holds a clustered layout ({', '.join(sorted(engines))}); "
            "going back to a single host is not converted in place"
        )
    events, upgrade = engines.get(EVENTS), engines.get(EVENTS_UPGRADE)
    if events is None:
        return _create(EVENTS, schema.events_table(wanted), _family(False))
    if not schema.deduplicates(events):  # schema version 1
        if upgrade is None:
            sql = schema.events_table(wanted, name=EVENTS_UPGRADE)
            return _create(EVENTS_UPGRADE, sql, _family(False))
        if not schema.deduplicates(upgrade):
            raise LayoutError(
                f"{wanted.database}: {EVENTS} and {EVENTS_UPGRADE} are both {upgrade}s; "
                f"one of them was not made by this operator"
            )
        return _exchange(wanted, EVENTS, EVENTS_UPGRADE)
    if upgrade is not None:  # exchanged: the version-1 rows are copied to the stage
        if EVENTS_STAGE not in engines:
            return _create_stages(wanted, engines, replicated=False)
        return _copy_rows(wanted, EVENTS_UPGRADE, EVENTS_STAGE)
    if EVENTS_STAGE in engines:  # and from there moved in, partition by partition
        staged = seen.parts(EVENTS_STAGE)
        if staged:
            return _move(wanted, EVENTS_STAGE, min(staged), EVENTS)
        return _drop(wanted, EVENTS_STAGE)
    return None


def next_step(wanted: TenantSchema, seen: Observed) -> Step | None:
    """The one next statement that brings this host closer to `wanted`; None when it
    holds exactly the layout. Pure: the order of the rules is the conversion."""
    if not wanted.clustered:
        return _single_node_step(wanted, seen)
    engines = seen.engines
    if EVENTS_LOCAL not in engines:
        return _create(EVENTS_LOCAL, schema.events_table(wanted), _family(wanted.replicated))
    if EVENTS_UPGRADE in engines:  # a single host's upgrade, cut short by growing
        create = _create_stages(wanted, engines, replicated=_replicated(engines[EVENTS_LOCAL]))
        return create or _copy_rows(wanted, EVENTS_UPGRADE, EVENTS_STAGE)
    if any(t in engines for t in (EVENTS_MOVE, EVENTS_STAGE, EVENTS_STAGE_REPLICATED)):
        step = _drain_step(wanted, seen)
        if step is not None:
            return step
    local = engines[EVENTS_LOCAL]
    local_ok = _replicated(local) == wanted.replicated and schema.deduplicates(local)
    if _replicated(engines[EVENTS_LOCAL]) and not wanted.replicated:
        raise LayoutError(
            f"{wanted.database}.{EVENTS_LOCAL} is replicated but the layout has no replicas: "
            "removing replicas is not converted in place"
        )
    local_next = engines.get(EVENTS_LOCAL_NEXT)
    if local_next is not None:
        if not local_ok:  # built, not yet exchanged
            return _exchange(wanted, EVENTS_LOCAL, EVENTS_LOCAL_NEXT)
        # exchanged: the old table (or an unused copy) is left under the _next name
        return _rename(wanted, EVENTS_LOCAL_NEXT, EVENTS_MOVE)
    if not local_ok:
        sql = schema.events_table(wanted, name=EVENTS_LOCAL_NEXT)
        return _create(EVENTS_LOCAL_NEXT, sql, _family(wanted.replicated))
    events, events_next = engines.get(EVENTS), engines.get(EVENTS_NEXT)
    distributed = schema.distributed_table(wanted)
    assert distributed is not None
    if events_next is not None:
        if events is None:
            return _rename(wanted, EVENTS_NEXT, EVENTS)
        if events == "Distributed":
            if _storing(events_next):  # exchanged: the old events moves on
                return _rename(wanted, EVENTS_NEXT, EVENTS_MOVE)
            return _drop(wanted, EVENTS_NEXT)  # a second Distributed holds no rows
        return _exchange(wanted, EVENTS, EVENTS_NEXT)
    if events is None:
        return _create(EVENTS, distributed, "Distributed")
    if events != "Distributed":
        built = schema.distributed_table(wanted, name=EVENTS_NEXT)
        assert built is not None
        return _create(EVENTS_NEXT, built, "Distributed")
    return None


def observe(client: ClickHouseClient, wanted: TenantSchema) -> Observed:
    """The tenant's tables on the host `client` talks to, and their partitions."""
    tables = client.query(
        "SELECT name, engine FROM system.tables WHERE database = {db:String}",
        {"db": wanted.database},
    )
    engines = {str(r["name"]): str(r["engine"]) for r in tables if str(r["name"]) in _OURS}
    parts = client.query(
        "SELECT DISTINCT table, partition_id FROM system.parts "
        "WHERE database = {db:String} AND active AND rows > 0",
        {"db": wanted.database},
    )
    partitions: dict[str, set[str]] = {}
    for row in parts:
        partitions.setdefault(str(row["table"]), set()).add(str(row["partition_id"]))
    return Observed(engines, {t: frozenset(p) for t, p in partitions.items()})


@dataclass
class Converged:
    """The statements `converge` ran and how many partitions left `events_move`."""

    statements: list[str] = field(default_factory=list)
    moved_partitions: int = 0


def converge(
    client: ClickHouseClient, wanted: TenantSchema, *, max_steps: int = MAX_STEPS
) -> Converged:
    """Run `next_step` until there is none (see the module docstring)."""
    done = Converged()
    for _ in range(max_steps):
        step = next_step(wanted, observe(client, wanted))
        if step is None:
            return done
        for statement in step.statements:
            client.command(statement)
            done.statements.append(statement)
        done.moved_partitions += int(step.moves)
    raise LayoutError(f"{wanted.database}: no layout after {max_steps} statements")


def has_schema(client: ClickHouseClient, wanted: TenantSchema) -> bool:
    """Whether the host holds exactly the layout: its tables with their engines and
    nothing left of a conversion (the retention is not checked; `provision` fixes it)."""
    return next_step(wanted, observe(client, wanted)) is None


@dataclass
class ProvisionReport:
    """What `provision` did on one host: the statements it ran, whether it created
    the events table on a new host, whether it converted another layout's tables (and
    how many partitions it moved), and the retention it replaced when the TTL had
    drifted."""

    statements: list[str] = field(default_factory=list)
    created: bool = False
    converted: bool = False
    moved_partitions: int = 0
    ttl_altered: bool = False
    previous_ttl_days: int | None = None

    @property
    def changed(self) -> bool:
        return self.created or self.converted or self.ttl_altered


def _engine_full(client: ClickHouseClient, wanted: TenantSchema) -> str | None:
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": wanted.database, "t": wanted.local_table},
    )
    return str(rows[0]["engine_full"]) if rows else None


def provision(client: ClickHouseClient, wanted: TenantSchema) -> ProvisionReport:
    """Bring the host `client` talks to to `wanted`; a second call changes nothing.

    The database, then `converge` (the layout's tables; a conversion when the host
    holds another layout's). Then the TTL is read back from
    `system.tables.engine_full` (normalised by the engine, `timestamp +
    toIntervalDay(N)`) and ALTERed only when N differs from the wanted retention.
    It concerns this host only: the operator runs it on every host.
    """
    report = ProvisionReport()
    statement = schema.create_database(wanted)
    client.command(statement)
    report.statements.append(statement)
    before = observe(client, wanted).engines
    done = converge(client, wanted)
    report.statements.extend(done.statements)
    report.moved_partitions = done.moved_partitions
    report.created = not before
    report.converted = bool(before) and bool(done.statements)
    engine_full = _engine_full(client, wanted)
    if engine_full is None:
        raise RuntimeError(f"{wanted.database}.{wanted.local_table} missing after CREATE")
    current = schema.ttl_days_of(engine_full)
    if current != wanted.retention_days:
        statement = schema.modify_ttl(wanted)
        client.command(statement)
        report.statements.append(statement)
        report.ttl_altered = True
        report.previous_ttl_days = current
    return report
