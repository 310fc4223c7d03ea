"""`layout.next_step`'s decisions for every transition, into replicated layouts too.

The engine runs the transitions between non-replicated layouts for real
(tests/integration/clickhouse/test_layouts.py); it cannot run replicated tables
(chDB keeps them read-only, see there). Here a model of what each statement does to
one host's tables (`TableModel`: an engine per table and the row ids per partition,
with the engine's rules that MOVE and REPLACE PARTITION refuse to cross engine families
and sorting keys) takes the steps, so the decisions are checked for 1 x 1 -> 1 x M and
N x M and for N x 1 -> N x M as well: every row ends in `events_local` exactly once,
after any number of steps and with inserts still landing in the old table. Hosts of
schema version 1 (plain MergeTree sorted without `event_id`) are upgraded in every
layout; there a row may be copied twice by a copy cut short, and the deduplicating
engine keeps one (the model counts a deduplicating table's ids once each).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tenantry.clickhouse import layout, schema
from tenantry.clickhouse.schema import TenantSchema


def _family(engine: str) -> str:
    return "replicated" if engine.startswith("Replicated") else "plain"


def _ordering(engine: str) -> str:
    """Version 1's tables are sorted without `event_id`: partitions can't cross."""
    return "v2" if schema.deduplicates(engine) else "v1"


V1 = {False: "MergeTree", True: "ReplicatedMergeTree"}
"""Schema version 1's storing engines (as system.tables shows them): what older hosts hold."""


@dataclass
class TableModel:
    """One host's tables as the statements leave them (a model, not the engine)."""

    engines: dict[str, str]
    rows: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def observed(self) -> layout.Observed:
        parts = {t: frozenset(p for p, ids in ps.items() if ids) for t, ps in self.rows.items()}
        return layout.Observed(dict(self.engines), parts)

    def insert(self, table: str, partition: str, ids: list[int]) -> None:
        self.rows.setdefault(table, {}).setdefault(partition, []).extend(ids)

    def apply(self, step: layout.Step) -> None:
        t, o, p = step.table, step.other, step.partition
        if step.op == "create":
            assert t not in self.engines
            self.engines[t] = step.engine
            self.rows[t] = {}
        elif step.op == "exchange":
            self.engines[t], self.engines[o] = self.engines[o], self.engines[t]
            self.rows[t], self.rows[o] = self.rows.get(o, {}), self.rows.get(t, {})
        elif step.op == "rename":
            assert o not in self.engines
            self.engines[o] = self.engines.pop(t)
            self.rows[o] = self.rows.pop(t, {})
        elif step.op == "move":
            assert _family(self.engines[t]) == _family(self.engines[o]), "MOVE across families"
            assert _ordering(self.engines[t]) == _ordering(self.engines[o]), "different ordering"
            self.rows[o].setdefault(p, []).extend(self.rows[t].pop(p))
        elif step.op == "copy":  # REPLACE PARTITION: the target's partition becomes a copy
            assert _ordering(self.engines[t]) == _ordering(self.engines[o]), "different ordering"
            self.rows[o][p] = list(self.rows[t][p])
        elif step.op == "copy_rows":  # INSERT SELECT of everything, then DROP TABLE
            for partition, ids in self.rows.get(t, {}).items():
                self.rows[o].setdefault(partition, []).extend(ids)
            if step.then:
                self.engines.pop(t)
                self.rows.pop(t, None)
        elif step.op == "drop_partition":
            self.rows[t].pop(p)
        elif step.op == "drop":
            assert not any(self.rows.get(t, {}).values()), f"{t} dropped with rows"
            self.engines.pop(t)
            self.rows.pop(t, None)

    def copy_cut_short(self, step: layout.Step) -> None:
        """The INSERT of a copy_rows step ran; the process died before the DROP."""
        assert step.op == "copy_rows"
        self.apply(layout.Step("copy_rows", step.table, step.sql, other=step.other))

    def stored(self) -> list[int]:
        """Every row id in every table that stores rows, as reads with FINAL see them:
        a row in two tables counts twice; in one deduplicating table, once."""
        found: list[int] = []
        for t, parts in self.rows.items():
            if not self.engines[t].endswith("MergeTree"):
                continue
            ids = [i for ids in parts.values() for i in ids]
            found.extend(set(ids) if schema.deduplicates(self.engines[t]) else ids)
        return sorted(found)

    def local_rows(self) -> list[int]:
        return sorted({i for ids in self.rows["events_local"].values() for i in ids})


def _schema(shards: int, replicas: int) -> TenantSchema:
    if shards * replicas == 1:
        return TenantSchema(database="t_acme", retention_days=30)
    return TenantSchema(
        database="t_acme", retention_days=30, cluster="tenant", shards=shards, replicas=replicas
    )


def _host_of(shards: int, replicas: int) -> TableModel:
    """ch-s0-r0 of a layout, holding 3 partitions of rows in its storing table."""
    host = TableModel({})
    wanted = _schema(shards, replicas)
    while (step := layout.next_step(wanted, host.observed())) is not None:
        host.apply(step)
    for n, partition in enumerate(("202610", "202611", "202612")):
        host.insert(wanted.local_table, partition, list(range(n * 100, n * 100 + 100)))
    return host


def _run(host: TableModel, wanted: TenantSchema, *, limit: int = 1000) -> list[layout.Step]:
    taken = []
    while (step := layout.next_step(wanted, host.observed())) is not None:
        host.apply(step)
        taken.append(step)
        assert len(taken) < limit
    return taken


TRANSITIONS = [
    ((1, 1), (2, 1)),
    ((1, 1), (1, 3)),
    ((1, 1), (2, 2)),
    ((2, 1), (2, 2)),
    ((2, 1), (4, 1)),
    ((1, 2), (3, 2)),
    ((1, 2), (1, 3)),
]


@pytest.mark.parametrize(("before", "after"), TRANSITIONS)
def test_every_row_ends_in_events_local_once(
    before: tuple[int, int], after: tuple[int, int]
) -> None:
    host = _host_of(*before)
    rows = host.stored()
    wanted = _schema(*after)

    steps = _run(host, wanted)

    assert host.stored() == rows
    assert sorted(i for ids in host.rows["events_local"].values() for i in ids) == rows
    engine = schema.storing_engine_name(replicated=after[1] > 1)
    assert host.engines == {"events": "Distributed", "events_local": engine}
    assert all("ON CLUSTER" not in s.sql for s in steps)
    assert layout.next_step(wanted, host.observed()) is None


def test_plain_to_replicated_goes_through_both_stages() -> None:
    host = _host_of(2, 1)
    ops = [(s.op, s.table, s.other) for s in _run(host, _schema(2, 2))]
    assert ops[:3] == [
        ("create", "events_local_next", ""),
        ("exchange", "events_local", "events_local_next"),
        ("rename", "events_local_next", "events_move"),
    ]
    per_partition = [
        ("move", "events_move", "events_stage"),
        ("copy", "events_stage", "events_stage_replicated"),
        ("drop_partition", "events_stage", ""),
        ("move", "events_stage_replicated", "events_local"),
    ]
    assert ops[5:9] == per_partition  # after creating the two stages
    assert ops[-3:] == [("drop", t, "") for t in layout.CONVERSION_TABLES[2:]]


@pytest.mark.parametrize("version", [2, 1])
@pytest.mark.parametrize(
    ("before", "after"), [((1, 1), (2, 2)), ((2, 1), (2, 3)), ((2, 1), (2, 2))]
)
def test_a_late_insert_into_the_old_table_is_moved_too_at_any_point(
    before: tuple[int, int], after: tuple[int, int], version: int
) -> None:
    """An INSERT that began before the exchange lands in the old table later: wherever
    it lands during the drain, its rows end in events_local once (from a host of this
    schema version, and from one of version 1 whose rows are copied)."""
    build = _host_of if version == 2 else _v1_host_of
    wanted = _schema(*after)
    total = len(_run(build(*before), wanted))
    for cut in range(total):
        host = build(*before)
        rows = host.stored()
        for _ in range(cut):
            step = layout.next_step(wanted, host.observed())
            assert step is not None
            host.apply(step)
        if "events_move" in host.engines:
            host.insert("events_move", "202611", [9000, 9001])
            rows = sorted([*rows, 9000, 9001])
        _run(host, wanted)
        assert host.stored() == rows, f"late insert after step {cut}"


def test_back_to_one_host_is_refused() -> None:
    host = _host_of(2, 1)
    with pytest.raises(layout.LayoutError, match="single host"):
        layout.next_step(_schema(1, 1), host.observed())


def test_removing_replicas_is_refused_before_any_statement() -> None:
    host = _host_of(2, 2)
    with pytest.raises(layout.LayoutError, match="replicated"):
        layout.next_step(_schema(2, 1), host.observed())


def _v1_host_of(shards: int, replicas: int) -> TableModel:
    """ch-s0-r0 of a layout as schema version 1 built it, 3 partitions of rows."""
    if shards * replicas == 1:
        host = TableModel({"events": V1[False]}, {"events": {}})
    else:
        host = TableModel(
            {"events": "Distributed", "events_local": V1[replicas > 1]}, {"events_local": {}}
        )
    table = "events" if shards * replicas == 1 else "events_local"
    for n, partition in enumerate(("202610", "202611", "202612")):
        host.insert(table, partition, list(range(n * 100, n * 100 + 100)))
    return host


UPGRADES = [
    ((1, 1), (1, 1)),
    ((2, 1), (2, 1)),
    ((1, 2), (1, 2)),
    ((2, 2), (2, 2)),
    ((1, 1), (2, 1)),
    ((1, 1), (2, 2)),
    ((2, 1), (2, 3)),
    ((1, 2), (3, 2)),
]


@pytest.mark.parametrize(("before", "after"), UPGRADES)
def test_a_version_1_host_is_upgraded_with_every_row_once(
    before: tuple[int, int], after: tuple[int, int]
) -> None:
    host = _v1_host_of(*before)
    rows = host.stored()
    wanted = _schema(*after)

    steps = _run(host, wanted)

    assert host.stored() == rows
    engine = schema.storing_engine_name(replicated=after[1] > 1)
    if after == (1, 1):
        assert host.engines == {"events": engine}
    else:
        assert host.engines == {"events": "Distributed", "events_local": engine}
        assert host.local_rows() == rows
    assert [s.op for s in steps].count("copy_rows") == 1  # the rows are copied once
    assert layout.next_step(wanted, host.observed()) is None


@pytest.mark.parametrize(("before", "after"), UPGRADES)
def test_an_upgrade_killed_between_copy_and_drop_keeps_every_row_once(
    before: tuple[int, int], after: tuple[int, int]
) -> None:
    """The copy is made again in full; rows copied twice are one row each."""
    host = _v1_host_of(*before)
    rows = host.stored()
    wanted = _schema(*after)
    while (step := layout.next_step(wanted, host.observed())) is not None:
        if step.op == "copy_rows":
            host.copy_cut_short(step)
            break
        host.apply(step)
    else:
        pytest.fail("no copy_rows step")

    steps = _run(host, wanted)

    assert [s.op for s in steps].count("copy_rows") == 1  # made again
    assert host.stored() == rows


def test_copied_rows_reach_the_storing_table_only_by_moving_partitions() -> None:
    """No INSERT into a table a materialized view watches (events, events_local): the
    views have counted the version-1 rows already."""
    for before, after in UPGRADES:
        steps = _run(_v1_host_of(*before), _schema(*after))
        inserts = [s for s in steps if s.op == "copy_rows"]
        assert [s.other for s in inserts] == ["events_stage"]
        assert not any(s.op == "copy" and s.other in ("events", "events_local") for s in steps)


def test_the_version_1_replicated_table_is_left_to_its_other_replicas() -> None:
    """DROP TABLE of a replicated table removes this replica only: never DROP PARTITION
    (replicated to every replica, whose rows may not be copied yet)."""
    host = _v1_host_of(2, 2)
    steps = _run(host, _schema(2, 2))
    on_old = [s for s in steps if s.table == "events_move"]
    assert [s.op for s in on_old] == ["copy_rows"]
    assert on_old[0].then.startswith("DROP TABLE")
    dropped = {s.table for s in steps if any("DROP PARTITION" in q for q in s.statements)}
    assert dropped <= {"events_stage"}  # this host's own plain stage only
