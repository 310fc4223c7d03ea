"""A restore's progress: the lines the Job prints, read back into the Restore's status."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from tenantry_operator import restore_progress as rp

from tenantry.api.restore import RestoreShardStatus, RestoreStatus, ShardPhase

PLAN = rp.plan_line(backup="20261206T031500.123Z", rows=1000, shards=2)


def test_lines_round_trip_and_the_newest_line_of_each_shard_wins() -> None:
    lines = [
        "restoring backup 20261206T031500.123Z ...",  # a readable line: skipped
        PLAN,
        rp.shard_line(0, "ch-s0-r0", ShardPhase.STAGING),
        rp.shard_line(1, "ch-s1-r1", ShardPhase.STAGING),
        rp.shard_line(0, "ch-s0-r0", ShardPhase.STAGED, 400),
        rp.shard_line(1, "ch-s1-r1", ShardPhase.STAGED, 600),
        rp.shard_line(0, "ch-s0-r0", ShardPhase.IN_PLACE, 400),
    ]
    progress = rp.parse(lines)
    assert progress.plan == rp.Plan(backup="20261206T031500.123Z", rows=1000, shards=2)
    assert progress.shards == {
        0: RestoreShardStatus(shard=0, host="ch-s0-r0", phase=ShardPhase.IN_PLACE, rows=400),
        1: RestoreShardStatus(shard=1, host="ch-s1-r1", phase=ShardPhase.STAGED, rows=600),
    }
    assert progress.summary() == "1/2 shards in place"
    assert progress.restored() is None  # shard 1 is not in place yet
    done = rp.parse([*lines, rp.shard_line(1, "ch-s1-r1", ShardPhase.IN_PLACE, 600)])
    assert done.restored() == 1000
    assert done.summary() == "2/2 shards in place"


def test_the_status_fields_are_the_restore_status_model_s_own() -> None:
    progress = rp.parse([PLAN, rp.shard_line(1, "ch-s1-r0", ShardPhase.STAGED, 7)])
    fields = progress.status()
    assert fields == {
        "backup": "20261206T031500.123Z",
        "rows": 1000,
        "shards": [{"shard": 1, "host": "ch-s1-r0", "phase": "Staged", "rows": 7}],
        "progress": "1/2 shards staged",
    }
    status = RestoreStatus.model_validate(fields)  # camelCase, extra fields refused
    assert status.shards[0].rows == 7


def test_nothing_said_yet_sets_nothing() -> None:
    assert rp.parse(["restore failed: no complete backup"]).status() == {}
    assert rp.parse([]).summary() is None


@given(st.lists(st.text(max_size=80), max_size=20))
def test_any_other_output_is_skipped_never_raises(lines: list[str]) -> None:
    noisy = [rp.PREFIX + line for line in lines] + lines
    progress = rp.parse([*noisy, PLAN])
    assert progress.plan is not None
    assert progress.plan.rows == 1000


def test_cut_or_foreign_progress_lines_are_skipped() -> None:
    lines = [
        PLAN[: len(PLAN) // 2],  # cut by the tail
        rp.PREFIX + '{"shard": -1, "phase": "Staged"}',  # out of range
        rp.PREFIX + '{"shard": 0, "phase": "Done"}',  # unknown phase
        rp.PREFIX + '{"shard": 0, "phase": "Staged", "secret": "x"}',  # unknown field
        rp.PREFIX + "[1, 2]",
    ]
    assert rp.parse(lines).status() == {}


def test_each_step_is_told_once() -> None:
    staged = rp.parse([PLAN, rp.shard_line(0, "h0", ShardPhase.STAGED, 5)])
    stored = staged.status()["shards"]
    assert isinstance(stored, list)
    assert [s.shard for s in rp.new_steps([], staged)] == [0]
    assert rp.new_steps(stored, staged) == []  # already told
    placed = rp.parse([PLAN, rp.shard_line(0, "h0", ShardPhase.IN_PLACE, 5)])
    [step] = rp.new_steps(stored, placed)
    assert rp.told(step) == "shard 0: 5 rows in place on h0"
    staging = rp.parse([rp.shard_line(1, "h1", ShardPhase.STAGING)])
    assert rp.new_steps([], staging) == []  # a start is not an Event
