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
