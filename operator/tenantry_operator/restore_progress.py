"""A restore's progress, from the Job to the Restore's status (pure).

The restore Job (``restore_job``) prints one line per step, ``restore-progress <JSON>``,
beside its readable lines: first the plan (the backup it resolved, the rows that backup
holds, the number of target shards), then for each target shard ``Staging``, ``Staged``
with the rows staged and ``InPlace`` with the rows moved into the tenant's table. The
operator reads the Job's log while it runs and once more when it ends
(``restore_worker``) and turns the lines into ``status.backup``, ``status.rows``,
``status.shards`` and ``status.progress``.

Why the log: the Job then needs no access to the Kubernetes API (its pod mounts no
service account token, and a restore's credentials stay ClickHouse's and S3's), and
``kubectl logs job/<name>`` shows the same lines the status is made from. The log is
read with a tail, so only the last lines count: each shard's newest line wins, and a
plan line missing from the tail (a very long log) leaves those fields unset, never
wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, ValidationError

from tenantry.api.restore import RestoreShardStatus, ShardPhase

PREFIX = "restore-progress "
TAIL_LINES = 500  # of the Job's log read per look: a few lines per shard (64 at most)


class Plan(BaseModel):
    """What the Job is about to restore."""

    model_config = ConfigDict(extra="forbid")

    backup: str
    rows: int
    shards: int


@dataclass(frozen=True)
class Progress:
    """What the Job's log says so far."""

    plan: Plan | None = None
    shards: dict[int, RestoreShardStatus] = field(default_factory=dict)

    def summary(self) -> str | None:
        """A few words for ``status.progress`` (None before the Job has said anything)."""
        if self.plan is None and not self.shards:
            return None
        total = self.plan.shards if self.plan is not None else len(self.shards)
        placed = sum(1 for s in self.shards.values() if s.phase == ShardPhase.IN_PLACE)
        if placed:
            return f"{placed}/{total} shards in place"
        staged = sum(1 for s in self.shards.values() if s.phase == ShardPhase.STAGED)
        return f"{staged}/{total} shards staged"

    def restored(self) -> int | None:
        """The rows in place on every shard, once every planned shard reports them."""
        if self.plan is None:
            return None
        placed = [s for s in self.shards.values() if s.phase == ShardPhase.IN_PLACE]
        if len(placed) != self.plan.shards:
            return None
        return sum(s.rows or 0 for s in placed)

    def status(self) -> dict[str, object]:
        """The Restore status fields this progress sets (camelCase, as stored)."""
        out: dict[str, object] = {}
        if self.plan is not None:
            out.update(backup=self.plan.backup, rows=self.plan.rows)
        if self.shards:
            out["shards"] = [
                self.shards[k].model_dump(mode="json", by_alias=True, exclude_none=True)
                for k in sorted(self.shards)
            ]
        summary = self.summary()
        if summary is not None:
            out["progress"] = summary
        return out


def plan_line(*, backup: str, rows: int, shards: int) -> str:
    return PREFIX + Plan(backup=backup, rows=rows, shards=shards).model_dump_json()


def shard_line(shard: int, host: str, phase: ShardPhase, rows: int | None = None) -> str:
    status = RestoreShardStatus(shard=shard, host=host, phase=phase, rows=rows)
    return PREFIX + status.model_dump_json(by_alias=True, exclude_none=True)


def parse(lines: Iterable[str]) -> Progress:
    """The progress the lines of a Job's log report; lines of any other kind, and
    progress lines that do not parse (a line cut by the tail), are skipped."""
    plan = None
    shards: dict[int, RestoreShardStatus] = {}
    for raw in lines:
        line = raw.strip()
        if not line.startswith(PREFIX):
            continue
        try:
            data = json.loads(line[len(PREFIX) :])
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        try:
            if "shard" in data:
                status = RestoreShardStatus.model_validate(data)
                shards[status.shard] = status
            else:
                plan = Plan.model_validate(data)
        except ValidationError:
            continue
    return Progress(plan, shards)


def told(step: RestoreShardStatus) -> str:
    """An Event's message for a shard's step."""
    done = "staged" if step.phase == ShardPhase.STAGED else "in place"
    return f"shard {step.shard}: {step.rows} rows {done} on {step.host}"


def new_steps(before: Iterable[object], after: Progress) -> list[RestoreShardStatus]:
    """The shards whose phase ``after`` moved on from ``before`` (the stored
    ``status.shards``): each is told once, as an Event."""
    seen: dict[int, str] = {}
    for item in before:
        if isinstance(item, dict) and isinstance(item.get("shard"), int):
            seen[item["shard"]] = str(item.get("phase"))
    return [
        s
        for k, s in sorted(after.shards.items())
        if s.phase != ShardPhase.STAGING and seen.get(k) != s.phase
    ]
