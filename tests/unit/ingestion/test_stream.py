"""The deduplication token (a function of the entry ids, and of nothing else) and entries."""

from __future__ import annotations

from ingestion.stream import JSON_EACH_ROW, ROWBINARY, Entry, dedup_token, entry_from


def test_same_ids_same_token_other_ids_other_token() -> None:
    ids = ["1700000000000-0", "1700000000001-0", "1700000000001-1"]
    assert dedup_token(ids) == dedup_token(list(ids))
    assert dedup_token(ids) != dedup_token(ids[:2])
    assert dedup_token(ids) != dedup_token(list(reversed(ids)))
    assert dedup_token(ids).startswith("ingest:1700000000000-0:3:")


def test_entry_time_comes_from_its_id() -> None:
    assert Entry(id="1700000000123-4", rows=b"", count=0).millis == 1700000000123


def test_entries_say_their_row_format_and_usage_size() -> None:
    fields = {b"rowbinary": b"\x01\x02", b"n": b"2", b"bytes": b"150", b"batch": b"b"}
    new = entry_from(b"1-0", fields)
    assert new == Entry(id="1-0", rows=b"\x01\x02", count=2, fmt=ROWBINARY, size=150)
    old = entry_from("2-0", {b"rows": b'{"a":1}\n', b"n": b"1", b"batch": b"b"})
    assert old == Entry(id="2-0", rows=b'{"a":1}\n', count=1, fmt=JSON_EACH_ROW, size=8)
    assert entry_from("3-0", None) is None
