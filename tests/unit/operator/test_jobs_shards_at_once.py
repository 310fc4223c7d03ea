"""The backup and restore jobs work on every shard at once: each shard's work waits at a
barrier that the other shards must reach too, which only happens if they run side by
side (one at a time, the first shard's wait breaks the barrier). Each job's own
scheduler runs; only the per-shard work is replaced (its I/O is tested against real
servers in tests/integration/operator/test_backup_job.py and test_restore_job.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from tenantry_operator import backup_job, backups, restore_job
from tenantry_operator.builders import backup, restore

from tenantry.settings import from_mapping
from tests.unit.operator import fixtures

WAIT = 30.0  # generous: only a job that runs the shards one at a time waits this long


def _env(container_env: list[dict[str, Any]]) -> dict[str, str]:
    """The env as rendered, Secrets stood in for (an endpoint nothing is sent to: the
    per-shard work that would use it is replaced)."""
    env = {e["name"]: e.get("value", "secret") for e in container_env}
    env["TENANTRY_S3_ENDPOINT"] = "http://127.0.0.1:9"
    return env


def _sharded_env(kind: str) -> dict[str, str]:
    model = fixtures.model("tenant-sharded")  # 3 shards
    if kind == "backup":
        return _env(backup.env(model))
    manifest = restore.job(model, name="r", source_tenant="", backup_name="latest", overwrite=False)
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return _env(container["env"])


def _shard_backup(shard: int, *, rows: int) -> backups.ShardBackup:
    return backups.ShardBackup(
        shard=shard,
        host=f"h{shard}",
        path=f"{backups.shard_dir(shard)}/",
        rows=rows,
        bytes=0,
        files=0,
    )


def test_the_backup_job_backs_up_every_shard_at_once() -> None:
    settings = from_mapping(backup_job.JobSettings, _sharded_env("backup"))
    shards = len(settings.hosts)
    barrier = threading.Barrier(shards, timeout=WAIT)

    class Job(backup_job.Job):
        def _backup_shard(self, name: str, shard: int) -> tuple[backups.ShardBackup, str]:  # noqa: ARG002
            barrier.wait()
            return _shard_backup(shard, rows=shard), "25.3"

    done = Job(settings)._backup_all("n")
    assert [(r.shard, r.rows) for r, _ in done] == [(k, k) for k in range(shards)]


def test_a_failing_shard_fails_the_backup_once_every_shard_has_ended() -> None:
    settings = from_mapping(backup_job.JobSettings, _sharded_env("backup"))
    shards = len(settings.hosts)
    barrier = threading.Barrier(shards, timeout=WAIT)
    ended: list[int] = []

    class Job(backup_job.Job):
        def _backup_shard(self, name: str, shard: int) -> tuple[backups.ShardBackup, str]:  # noqa: ARG002
            barrier.wait()
            if shard == 0:
                raise backup_job.BackupFailed("shard 0 on h0: refused")
            threading.Event().wait(0.2)  # still uploading when shard 0 has failed
            ended.append(shard)
            return _shard_backup(shard, rows=0), "25.3"

    with pytest.raises(backup_job.BackupFailed, match="shard 0 on h0"):
        Job(settings)._backup_all("n")
    assert sorted(ended) == list(range(1, shards))


def test_the_restore_job_stages_every_shard_at_once() -> None:
    settings = from_mapping(restore_job.RestoreSettings, _sharded_env("restore"))
    shards = len(settings.hosts)
    barrier = threading.Barrier(shards, timeout=WAIT)

    class Job(restore_job.Job):
        def _stage(self, manifest: Any, shard: int, host: str, client: Any) -> int:  # noqa: ARG002
            barrier.wait()
            return shard * 10

    clients: list[tuple[str, Any]] = [(f"h{k}", None) for k in range(shards)]
    assert Job(settings)._stage_all(None, clients) == [k * 10 for k in range(shards)]  # type: ignore[arg-type]
