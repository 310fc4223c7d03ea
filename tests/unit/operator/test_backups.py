"""The backups' layout and retention rules (pure): names sort like times, a backup
counts only with its manifest, retention keeps the N newest complete ones."""

from __future__ import annotations

import datetime as dt

import pytest
from tenantry_operator import backups

ROOT = "nightly/acme/"


def test_names_sort_like_times() -> None:
    times = [
        dt.datetime(2026, 12, 6, 3, 0, 0, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 6, 3, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 6, 4, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ]
    names = [backups.new_name(t) for t in times]
    assert names[0] == "20261206T030000.999Z"
    assert names[2] == "20261206T020000.000Z"  # converted to UTC
    assert sorted(names) == [names[2], names[0], names[1]]


def test_inventory_needs_the_manifest() -> None:
    keys = [
        f"{ROOT}b1/shard-0/.backup",
        f"{ROOT}b1/{backups.MANIFEST}",
        f"{ROOT}b2/shard-0/.backup",
        f"{ROOT}b2/shard-1/{backups.MANIFEST}",  # not the backup's own manifest
        f"{ROOT}stray-object",
        "nightly/other/b9/manifest.json",
    ]
    found = backups.inventory(keys, root=ROOT)
    assert found.complete == ["b1"]
    assert found.incomplete == ["b2"]
    assert found.newest == "b1"


@pytest.mark.parametrize(
    ("complete", "incomplete", "keep", "gone"),
    [
        (["a", "b", "c"], [], 3, []),
        (["a", "b", "c", "d"], [], 2, ["a", "b"]),
        (["b", "d"], ["a", "c", "e"], 5, ["a", "c"]),  # "e" may still be running
        ([], ["a"], 1, []),  # nothing complete yet: nothing to judge by
        (["a", "b"], ["c"], 1, ["a"]),
    ],
)
def test_retention(complete: list[str], incomplete: list[str], keep: int, gone: list[str]) -> None:
    found = backups.Inventory(complete, incomplete)
    assert backups.expired(found, keep=keep) == gone


def test_retention_keeps_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        backups.expired(backups.Inventory(["a"], []), keep=0)


def _manifest(name: str) -> backups.Manifest:
    shard = backups.ShardBackup(shard=0, host="h", path="shard-0/", rows=5, bytes=70, files=3)
    return backups.Manifest(
        name=name,
        tenant="acme",
        database="t_acme",
        started=dt.datetime(2026, 12, 6, 3, tzinfo=dt.UTC),
        finished=dt.datetime(2026, 12, 6, 3, 1, tzinfo=dt.UTC),
        shards=2,
        replicas=1,
        schema_version=1,
        engine_version="26.9.2.1",
        shard_backups=[shard, shard.model_copy(update={"shard": 1, "rows": 7, "bytes": 30})],
    )


def test_summary_is_the_newest_manifest_and_the_count() -> None:
    found = backups.Inventory(["a", "b"], ["c"])
    assert backups.summary(found, _manifest("b")) == {
        "count": 2,
        "lastBackup": "b",
        "lastSuccessTime": "2026-12-06T03:01:00Z",
        "sizeBytes": 100,
        "rows": 12,
        "shards": 2,
        "replicas": 1,
        "schemaVersion": 1,
    }
    assert backups.summary(backups.Inventory(), None) == {"count": 0}


def test_s3_is_read_only_when_the_cronjob_reports_a_new_success() -> None:
    assert backups.needs_read(None, None)  # never read
    stored = backups.status(read={"count": 0}, previous=None, job_success=None, failure=None)
    assert stored == {"count": 0}  # no nulls: the API server would drop them
    assert not backups.needs_read(stored, None)  # idle: nothing new
    assert backups.needs_read(stored, "2026-12-06T03:01:05Z")
    after = backups.status(
        read={"count": 1, "lastBackup": "b"},
        previous=stored,
        job_success="2026-12-06T03:01:05Z",
        failure=None,
    )
    assert not backups.needs_read(after, "2026-12-06T03:01:05Z")
    assert after["observedJobSuccess"] == "2026-12-06T03:01:05Z"


def test_a_failure_keeps_what_s3_said_and_adds_the_error() -> None:
    before = {"count": 3, "lastBackup": "b", "observedJobSuccess": "t1"}
    failed = backups.status(read=None, previous=before, job_success="t1", failure="Job failed")
    assert failed == {**before, "lastError": "Job failed"}
    cond = backups.condition(failed, configured=True, failure="Job failed", unreadable=None)
    assert (cond.type, cond.ok, cond.reason, cond.message) == (
        backups.HEALTHY,
        False,
        "BackupFailed",
        "Job failed",
    )
    healed = backups.status(read=None, previous=failed, job_success="t1", failure=None)
    assert "lastError" not in healed


@pytest.mark.parametrize(
    ("backup", "configured", "failure", "unreadable", "expected"),
    [
        ({"count": 0}, False, None, None, (False, "BackupNotConfigured")),
        ({"count": 2, "lastBackup": "b"}, True, "boom", None, (False, "BackupFailed")),
        ({"count": 2}, True, None, "S3 down", (None, "BackupsUnreadable")),
        ({"count": 0}, True, None, None, (None, "NoBackupYet")),
        ({"count": 2, "lastBackup": "b"}, True, None, None, (True, "BackupSucceeded")),
    ],
)
def test_backup_healthy_condition(
    backup: dict[str, object],
    configured: bool,
    failure: str | None,
    unreadable: str | None,
    expected: tuple[bool | None, str],
) -> None:
    cond = backups.condition(backup, configured=configured, failure=failure, unreadable=unreadable)
    assert (cond.ok, cond.reason) == expected


def test_an_event_names_each_new_backup_once() -> None:
    after = {"count": 2, "lastBackup": "b", "rows": 12, "sizeBytes": 100, "shards": 2}
    after["replicas"] = 1
    message = backups.new_backup({"count": 1, "lastBackup": "a"}, after)
    assert (
        message
        == "backup b: 12 rows, 100 bytes, 2 shard(s) x 1 replica(s); 2 complete backup(s) kept"
    )
    assert backups.new_backup(after, after) is None
    assert backups.new_backup(None, {"count": 0}) is None
