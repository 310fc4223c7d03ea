"""`layout.next_step`'s decisions for every transition, into replicated layouts too.

The engine runs the transitions between non-replicated layouts for real
(tests/integration/clickhouse/test_layouts.py); it cannot run replicated tables
(chDB keeps them read-only, see there). Here a model of what each statement does to
one host's tables (`TableModel`: an engine per table and the row ids per partition,
with the engine's rule that MOVE PARTITION refuses to cross engine families) takes
the steps, so the decisions are checked for 1 x 1 -> 1 x M and N x M and for
N x 1 -> N x M as well: every row ends in `events_local` exactly once, after any
number of steps and with inserts still landing in the old table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tenantry.clickhouse import layout
from tenantry.clickhouse.schema import TenantSchema


def _family(engine: str) -> str:
    return "replicated" if engine.startswith("Replicated") else engine


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
            self.rows[o].setdefault(p, []).extend(self.rows[t].pop(p))
        elif step.op == "copy":  # REPLACE PARTITION: the target's partition becomes a copy
            self.rows[o][p] = list(self.rows[t][p])
        elif step.op == "drop_partition":
            self.rows[t].pop(p)
        elif step.op == "drop":
            assert not any(self.rows.get(t, {}).values()), f"{t} dropped with rows"
            self.engines.pop(t)
            self.rows.pop(t, None)

    def stored(self) -> list[int]:
        """Every row id in every table that stores rows (a row in two counts twice)."""
        return sorted(
            i
            for t, parts in self.rows.items()
            if self.engines[t].endswith("MergeTree")
            for ids in parts.values()
            for i in ids
        )


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
    engine = "ReplicatedMergeTree" if after[1] > 1 else "MergeTree"
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


@pytest.mark.parametrize(("before", "after"), [((1, 1), (2, 2)), ((2, 1), (2, 3))])
def test_a_late_insert_into_the_old_table_is_moved_too_at_any_point(
    before: tuple[int, int], after: tuple[int, int]
) -> None:
    """An INSERT that began before the exchange lands in the old table later: wherever
    it lands during the drain, its rows end in events_local once."""
    wanted = _schema(*after)
    total = len(_run(_host_of(*before), wanted))
    for cut in range(total):
        host = _host_of(*before)
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
