"""Event decoding and validation: every error located (index, line, field) and explained."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ingestion import events
from tenantry.clickhouse.schema import EVENT_COLUMNS

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
LIMITS = events.Limits(retention_days=30, max_events=100)


def ndjson(*items: object) -> bytes:
    return b"\n".join(json.dumps(i).encode() for i in items) + b"\n"


def prepared(body: bytes, *, ndjson_body: bool = True) -> list[dict[str, str]]:
    data, count = events.prepare(body, ndjson=ndjson_body, now=NOW, limits=LIMITS, batch_id="b1")
    rows = events.read_rows(data)
    assert len(rows) == count
    return rows


def errors_of(body: bytes, *, ndjson_body: bool = True) -> list[events.EventError]:
    with pytest.raises(events.InvalidBatch) as caught:
        events.prepare(body, ndjson=ndjson_body, now=NOW, limits=LIMITS, batch_id="b1")
    return caught.value.errors


def test_row_layout_matches_the_events_table_columns() -> None:
    assert [name for name, _ in events.COLUMNS] == [name for name, _ in EVENT_COLUMNS]
    for (name, wire), (_, declared) in zip(events.COLUMNS, EVENT_COLUMNS, strict=True):
        declared = declared.split(" DEFAULT ")[0]
        # LowCardinality(String) travels as String, DateTime64(3, 'UTC') as DateTime64(3)
        assert declared.startswith((wire.rstrip(")"), f"LowCardinality({wire})")), name


def test_valid_ndjson_and_array_give_the_same_events() -> None:
    items = [
        {"event": "signup", "user_id": "u1", "timestamp": "2026-11-27T11:00:00.5+01:00"},
        {"event": "view", "user_id": "u2", "properties": {"page": "/"}},
    ]
    as_lines = prepared(ndjson(*items))
    as_array = prepared(json.dumps(items).encode(), ndjson_body=False)
    assert [r["event"] for r in as_lines] == [r["event"] for r in as_array] == ["signup", "view"]
    assert as_lines[0]["timestamp"] == as_array[0]["timestamp"] == "2026-11-27 10:00:00.500"


def test_every_bad_ndjson_line_is_reported_with_line_and_field() -> None:
    body = ndjson(
        {"event": "ok", "user_id": "u"},
        {"event": "", "user_id": "u"},
        {"event": "x", "user_id": 7},
        {"user_id": "u"},
        {"event": "x", "user_id": "u", "colour": "red"},
        {"event": "x", "user_id": "u", "timestamp": "2026-11-27T11:00:00"},
    )
    body = body.replace(b"\n", b"\n\n", 1)  # a blank line does not count as an event
    found = [(e.index, e.line, e.field) for e in errors_of(body)]
    assert found == [
        (1, 3, "event"),
        (2, 4, "user_id"),
        (3, 5, "event"),
        (4, 6, "colour"),
        (5, 7, "timestamp"),
    ]
    empty, wrong_type, missing, unknown, naive = errors_of(body)
    assert "length >= 1" in empty.message
    assert "200 characters" in empty.allowed
    assert "got `int`" in wrong_type.message
    assert "missing required field `event`" in missing.message
    assert "unknown field `colour`" in unknown.message
    assert unknown.allowed == "only the fields event, user_id, timestamp, properties, event_id"
    assert "no UTC offset" in naive.message
    assert "RFC 3339" in naive.allowed


def test_array_errors_carry_the_index_and_no_line() -> None:
    body = json.dumps([{"event": "a", "user_id": "u"}, {"event": "a"}, [1]]).encode()
    found = [(e.index, e.line, e.field) for e in errors_of(body, ndjson_body=False)]
    assert found == [(1, None, "user_id"), (2, None, None)]


def test_malformed_json_and_wrong_shapes() -> None:
    (error,) = errors_of(b'[{"event": "a",', ndjson_body=False)
    assert (error.index, error.line) == (0, None)  # the event the body ends in
    assert error.message.startswith("malformed JSON")
    (error,) = errors_of(b'{"event": "a", "user_id": "u"}', ndjson_body=False)
    assert "JSON array" in error.message
    (error,) = errors_of(b'{"event": "a", "user_id": \n', ndjson_body=True)
    assert (error.index, error.line) == (0, 1)
    (error,) = errors_of(b"\n\n")
    assert "no events" in error.message


def test_semantic_rules_properties_object_size_and_time_window() -> None:
    old = (NOW - dt.timedelta(days=31)).isoformat()
    future = (NOW + dt.timedelta(days=2)).isoformat()
    body = ndjson(
        {"event": "a", "user_id": "u", "properties": [1, 2]},
        {"event": "a", "user_id": "u", "properties": {"k": "x" * events.MAX_PROPERTIES_BYTES}},
        {"event": "a", "user_id": "u", "timestamp": old},
        {"event": "a", "user_id": "u", "timestamp": future},
        {"event": "a", "user_id": "u", "properties": None},
    )
    found = errors_of(body)
    assert [(e.index, e.field) for e in found] == [
        (0, "properties"),
        (1, "properties"),
        (2, "timestamp"),
        (3, "timestamp"),
        (4, "properties"),
    ]
    assert "older than the retention" in found[2].message
    assert "future" in found[3].message
    assert "30 days" in found[2].allowed


def test_too_many_events_in_one_batch() -> None:
    body = ndjson(*[{"event": "a", "user_id": "u"}] * 101)
    (error,) = errors_of(body)
    assert "over the limit of 100" in error.message


def test_error_list_is_capped_and_says_so() -> None:
    body = ndjson(*[{"event": 1, "user_id": "u"}] * 150)
    with pytest.raises(events.InvalidBatch) as caught:
        events.prepare(
            body, ndjson=True, now=NOW, limits=events.Limits(retention_days=1), batch_id="b"
        )
    out = caught.value.details()
    assert len(out["errors"]) == events.MAX_ERRORS
    assert out["truncated"] is True
    assert "150 error(s)" in caught.value.message


def test_rows_are_utc_text_with_properties_as_json_text() -> None:
    items = [
        {
            "event": "buy",
            "user_id": "u1",
            "timestamp": "2026-11-27T13:30:00.25+02:00",
            "properties": {"sku": "A", "n": 2},
            "event_id": "0b7e4f8e-7c1e-4d3f-9a51-2f1f0c6a1b2c",
        },
        {"event": "view", "user_id": "u2"},
        {"event": "view", "user_id": "u3"},
    ]
    rows = prepared(ndjson(*items))
    assert rows[0] == {
        "event_id": "0b7e4f8e-7c1e-4d3f-9a51-2f1f0c6a1b2c",
        "timestamp": "2026-11-27 11:30:00.250",
        "event": "buy",
        "user_id": "u1",
        "properties": '{"sku": "A", "n": 2}',
        "received_at": "2026-11-27 12:00:00.000",
        "batch_id": "b1",
    }
    assert rows[1]["timestamp"] == rows[1]["received_at"]
    assert rows[1]["properties"] == "{}"
    assert len({r["event_id"] for r in rows}) == 3


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-11-27T11:30:00Z", "2026-11-27 11:30:00.000"),
        ("2026-11-27T11:30:00.1Z", "2026-11-27 11:30:00.100"),
        ("2026-11-27t11:30:00.123456z", "2026-11-27 11:30:00.123"),
        ("2026-11-27T11:30:00.999999Z", "2026-11-27 11:30:00.999"),
        ("2026-11-27 11:30:00.250+00:00", "2026-11-27 11:30:00.250"),
        ("2026-11-27T11:30:00.25-00:00", "2026-11-27 11:30:00.250"),
        ("2026-11-27T11:30:00+00:00", "2026-11-27 11:30:00.000"),
        ("2026-11-27T11:59:59.9999+00:30", "2026-11-27 11:29:59.999"),
        ("2026-11-27T13:30:00.250+02:00", "2026-11-27 11:30:00.250"),
        ("2026-11-27T06:30-05:00", "2026-11-27 11:30:00.000"),
        ("20261127T113000Z", "2026-11-27 11:30:00.000"),
    ],
)
def test_timestamps_are_stored_as_utc_milliseconds(sent: str, stored: str) -> None:
    (row,) = prepared(ndjson({"event": "a", "user_id": "u", "timestamp": sent}))
    assert row["timestamp"] == stored


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ("2026-13-27T11:30:00Z", "not an RFC 3339 timestamp"),
        ("yesterday", "not an RFC 3339 timestamp"),
        ("2026-11-27T11:30:00", "no UTC offset"),
        ("2026-11-27", "no UTC offset"),
    ],
)
def test_bad_timestamps_are_refused(sent: str, message: str) -> None:
    (error,) = errors_of(ndjson({"event": "a", "user_id": "u", "timestamp": sent}))
    assert (error.field, error.index, error.line) == ("timestamp", 0, 1)
    assert message in error.message


def test_event_ids_rows_and_order_survive_the_row_format() -> None:
    given = "0b7e4f8e-7c1e-4d3f-9a51-2f1f0c6a1b2c"
    items: list[dict[str, object]] = [{"event": "é", "user_id": "ü" * 256, "event_id": given}]
    items += [{"event": f"e{i}", "user_id": f"u{i}", "properties": {"i": i}} for i in range(90)]
    rows = prepared(ndjson(*items))
    assert rows[0]["event_id"] == given
    assert (rows[0]["event"], rows[0]["user_id"]) == ("é", "ü" * 256)
    assert [r["event"] for r in rows[1:]] == [f"e{i}" for i in range(90)]
    assert [json.loads(r["properties"])["i"] for r in rows[1:]] == list(range(90))
    generated = [r["event_id"] for r in rows[1:]]
    assert len({g[:24] for g in generated}) == 1  # one random prefix per batch, then the position
    assert [int(g[24:], 16) for g in generated] == list(range(1, 91))
