"""The deduplication token: a function of the entry ids, and of nothing else."""

from __future__ import annotations

from ingestion.stream import Entry, dedup_token


def test_same_ids_same_token_other_ids_other_token() -> None:
    ids = ["1700000000000-0", "1700000000001-0", "1700000000001-1"]
    assert dedup_token(ids) == dedup_token(list(ids))
    assert dedup_token(ids) != dedup_token(ids[:2])
    assert dedup_token(ids) != dedup_token(list(reversed(ids)))
    assert dedup_token(ids).startswith("ingest:1700000000000-0:3:")


def test_entry_time_comes_from_its_id() -> None:
    assert Entry(id="1700000000123-4", rows=b"", count=0).millis == 1700000000123
