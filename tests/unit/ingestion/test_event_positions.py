"""Where a malformed event is: its index (and NDJSON line) and field, whatever msgspec says.

The same bad events are sent in a JSON array and as NDJSON, between valid
events, so that the index is not trivially 0; the positions must not depend on
the msgspec version installed (its messages and exception classes differ).
"""

from __future__ import annotations

import pytest

from ingestion import events
from tests.unit.ingestion.test_events import LIMITS, NOW

GOOD = b'{"event": "ok", "user_id": "u"}'


def array(*items: bytes) -> bytes:
    return b"[" + b", ".join(items) + b"]"


def lines(*items: bytes) -> bytes:
    """NDJSON with a blank line after the first event: lines are then index + 2 from there."""
    return items[0] + b"\n\n" + b"\n".join(items[1:]) + b"\n"


def refused(body: bytes, *, ndjson: bool) -> list[events.EventError]:
    """The errors of a batch that must be refused as a whole (nothing of it accepted)."""
    with pytest.raises(events.InvalidBatch) as caught:
        events.prepare(body, ndjson=ndjson, now=NOW, limits=LIMITS, batch_id="b1")
    assert caught.value.total == len(caught.value.errors)
    return caught.value.errors


# (what is wrong, the bad event's bytes, the field the error must name)
BAD: list[tuple[str, bytes, str | None]] = [
    ("key not UTF-8", b'{"event": "a", "us\xffer_id": "u"}', None),
    ("known key's value not UTF-8", b'{"event": "a", "user_id": "u\xff"}', "user_id"),
    ("unknown key's value not UTF-8", b'{"event": "a", "user_id": "u", "x": "\xc3"}', "x"),
    (
        "nested property not UTF-8",
        b'{"event": "a", "user_id": "u", "properties": {"a": {"b": [1, {"c": "\xe2\x82"}]}}}',
        "properties",
    ),
    (
        "nested property key not UTF-8",
        b'{"event": "a", "user_id": "u", "properties": {"a": {"b": {"\xff": 1}}}}',
        "properties",
    ),
    ("int user_id", b'{"event": "a", "user_id": 7}', "user_id"),
    ("object event", b'{"event": {"name": "a"}, "user_id": "u"}', "event"),
    (
        "list timestamp",
        b'{"event": "a", "user_id": "u", "timestamp": ["2026-11-27T11:00Z"]}',
        "timestamp",
    ),
    ("bad uuid", b'{"event": "a", "user_id": "u", "event_id": "not-a-uuid"}', "event_id"),
    ("empty event name", b'{"event": "", "user_id": "u"}', "event"),
    ("missing user_id", b'{"event": "a"}', "user_id"),
    ("unknown field", b'{"event": "a", "user_id": "u", "colour": "red"}', "colour"),
    ("NUL inside a string", b'{"event": "a\x00b", "user_id": "u"}', "event"),
    ("NUL before a value", b'{"event": "a", "user_id":\x00"u"}', "user_id"),
    ("NUL between members", b'{"event": "a",\x00 "user_id": "u"}', None),
    ("NUL before the event", b'\x00{"event": "a", "user_id": "u"}', None),
    (
        "NUL in properties",
        b'{"event": "a", "user_id": "u", "properties": {"k": "\x00"}}',
        "properties",
    ),
    (
        "malformed properties",
        b'{"event": "a", "user_id": "u", "properties": {"k" 1}}',
        "properties",
    ),
    ("bad literal", b'{"event": "a", "user_id": tru}', "user_id"),
    ("member without colon", b'{"event": "a", "user_id"}', None),
    ("not an object", b'["event", "a"]', None),
    ("bracket mismatch", b'{"event": "a", "user_id": "u", "properties": {"k": [1}}}', None),
    (
        "properties nested too deep",
        b'{"event": "a", "user_id": "u", "properties": ' + b'{"k": ' * 2000 + b"1" + b"}" * 2001,
        "properties",
    ),
]


@pytest.mark.parametrize(("what", "bad", "field"), BAD, ids=[case[0] for case in BAD])
def test_a_bad_event_in_an_array_is_named_by_its_index(
    what: str, bad: bytes, field: str | None
) -> None:
    (error,) = refused(array(GOOD, GOOD, bad, GOOD), ndjson=False)
    assert (error.index, error.line, error.field) == (2, None, field)


@pytest.mark.parametrize(("what", "bad", "field"), BAD, ids=[case[0] for case in BAD])
def test_a_bad_ndjson_event_is_named_by_its_index_and_line(
    what: str, bad: bytes, field: str | None
) -> None:
    (error,) = refused(lines(GOOD, GOOD, bad, GOOD), ndjson=True)
    assert (error.index, error.line, error.field) == (2, 4, field)


def test_messages_say_what_is_wrong_in_words_of_our_own() -> None:
    body = lines(GOOD, *(bad for _, bad, _ in BAD))
    found = {
        what: error.message
        for (what, _, _), error in zip(BAD, refused(body, ndjson=True), strict=True)
    }
    assert found["key not UTF-8"] == "a key of this event is not UTF-8 text"
    assert found["known key's value not UTF-8"] == "user_id is not UTF-8 text"
    assert found["unknown key's value not UTF-8"].startswith("unknown field `x`")
    assert found["nested property not UTF-8"] == "properties is not UTF-8 text"
    assert found["int user_id"].startswith("invalid user_id")
    assert found["missing user_id"] == "missing required field `user_id`"
    assert found["unknown field"] == "unknown field `colour`"
    assert found["NUL inside a string"].startswith("malformed JSON in event")
    assert found["NUL between members"].startswith("malformed JSON: a key is not a JSON string")
    assert found["not an object"] == "an event must be a JSON object, not an array"
    assert "closing bracket" in found["bracket mismatch"]
    assert "nested more than" in found["properties nested too deep"]


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
def test_every_bad_event_of_a_batch_is_reported_in_order(ndjson: bool) -> None:
    items = [
        GOOD,
        b'{"event": "a", "user_id": "u\xff"}',
        GOOD,
        b'{"event": "a", "user_id": 7}',
        b'{"event": "a\x00", "user_id": "u"}',
        GOOD,
        b'{"event": "a", "user_id": "u", "properties": {"k": ["\xff"]}}',
    ]
    body = lines(*items) if ndjson else array(*items)
    found = [(e.index, e.line, e.field) for e in refused(body, ndjson=ndjson)]
    expected = [(1, "user_id"), (3, "user_id"), (4, "event"), (6, "properties")]
    assert found == [(i, i + 2 if ndjson else None, f) for i, f in expected]


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (b'{"event": "a", "user_id": "u', "cut short"),  # mid-string
        (b'{"event": "a", "user_id": "u\\', "cut short"),  # mid-escape
        (b'{"event": "a", "user_id": ', "cut short"),  # mid-object
        (b'{"event": "a", "user_id": "u", "properties": {"k": [1, ', "cut short"),
        (GOOD, "before the array's closing `]`"),  # only the closing bracket missing
    ],
    ids=["mid-string", "mid-escape", "mid-object", "mid-properties", "no closing bracket"],
)
def test_a_truncated_array_names_the_event_it_ends_in(cut: bytes, message: str) -> None:
    body = array(GOOD, b'{"event": "a", "user_id": 7}', cut)[:-1]  # the `]` left out
    found = refused(body, ndjson=False)
    assert [(e.index, e.line, e.field) for e in found] == [(1, None, "user_id"), (2, None, None)]
    assert message in found[1].message


def test_a_truncated_array_without_its_next_event_names_where_it_would_be() -> None:
    (error,) = refused(b"[" + GOOD + b", " + GOOD + b",", ndjson=False)
    assert (error.index, error.field) == (2, None)
    assert "ends where an event should start" in error.message


@pytest.mark.parametrize(
    "cut",
    [
        b'{"event": "a", "user_id": "u',
        b'{"event": "a", "user_id": ',
        b'{"event": "a", "user_id": "u", "properties": {"k": [1',
        b'{"event": "a", "user_id": "u"',
    ],
    ids=["mid-string", "mid-object", "mid-properties", "no closing brace"],
)
def test_a_truncated_ndjson_line_is_named_and_the_lines_after_it_are_read(cut: bytes) -> None:
    found = refused(lines(GOOD, GOOD, cut, b'{"event": 1, "user_id": "u"}', GOOD), ndjson=True)
    assert [(e.index, e.line, e.field) for e in found] == [(2, 4, None), (3, 5, "event")]
    assert "cut short" in found[0].message


def test_body_level_errors_have_no_index() -> None:
    for body, message in [
        (b'{"event": "a", "user_id": "u"}', "JSON array"),
        (b"\x00[" + GOOD + b"]", "JSON array"),
        (b"", "JSON array"),
        (array(GOOD, b'{"event": 1}') + b" x", "follows the array"),
        (b"[" + b"1," * 200 + b"1]", "more than 100 events"),
    ]:
        (error,) = refused(body, ndjson=False)
        assert (error.index, error.line, error.field) == (None, None, None)
        assert message in error.message


def test_an_ndjson_batch_over_the_limit_is_refused_for_its_size_without_reading_on() -> None:
    (error,) = refused(b"x\n" * 200, ndjson=True)
    assert error.index is None
    assert "more than 100 events" in error.message


def test_empty_places_in_an_array_are_events_missing() -> None:
    found = refused(b"[" + GOOD + b",, " + GOOD + b", ]", ndjson=False)
    assert [(e.index, e.field) for e in found] == [(1, None), (3, None)]
    assert all("an event is missing" in e.message for e in found)


@pytest.mark.parametrize("ndjson", [True, False])
@pytest.mark.parametrize("depth", [33, 100, 1_000, 5_000, 100_000])
@pytest.mark.parametrize("shape", ["objects", "arrays"])
def test_properties_nested_too_deep_are_refused_naming_the_event(
    ndjson: bool, depth: int, shape: str
) -> None:
    nested = {
        "objects": '{"a":' * depth + "1" + "}" * depth,
        "arrays": "{" + '"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}",
    }[shape]
    good = '{"event": "ok", "user_id": "u"}'
    bad = '{"event": "e", "user_id": "u", "properties": ' + nested + "}"
    body = ("\n".join([good, bad]) if ndjson else f"[{good}, {bad}]").encode()
    with pytest.raises(events.InvalidBatch) as refused:
        events.prepare(
            body, ndjson=ndjson, now=NOW, limits=events.Limits(retention_days=1), batch_id="b"
        )
    (error,) = refused.value.errors
    assert error.index == 1
    assert error.line == (2 if ndjson else None)
    assert error.field == "properties"
    assert f"properties is nested more than {events.MAX_PROPERTIES_DEPTH} deep" in error.message


@pytest.mark.parametrize("depth", [1, 10, events.MAX_PROPERTIES_DEPTH])
def test_properties_up_to_the_depth_limit_are_kept_as_sent(depth: int) -> None:
    nested = '{"a":' * depth + '"x{["' + "}" * depth  # brackets in a string don't count
    body = ('{"event": "e", "user_id": "u", "properties": ' + nested + "}").encode()
    rows, count = events.prepare(
        body, ndjson=True, now=NOW, limits=events.Limits(retention_days=1), batch_id="b"
    )
    assert count == 1
    assert events.read_rows(rows)[0]["properties"] == nested
