"""The structural scanner: exact spans on valid JSON, how far it got on malformed JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestion import jsonspans
from ingestion.jsonspans import MISMATCHED, NOT_A_CONTAINER, TOO_DEEP, TOO_MANY, TRAILING, TRUNCATED

# Any JSON value; text includes quotes, backslashes, brackets, commas, colons and
# control characters (escaped by the encoder), which are what a scanner can trip on.
TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('"\\[]{},: \x00'))
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner) | st.dictionaries(TEXT, inner), max_leaves=15
)
# How the producer lays the JSON out: compact, spaced, indented (newlines inside).
LAYOUTS: list[dict[str, Any]] = [
    {"separators": (",", ":")},
    {},
    {"indent": 2},
    {"indent": "\t", "separators": (" , ", " : ")},
]


def encode(value: object, layout: int, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only, **LAYOUTS[layout]).encode()


def pieces(data: bytes, scan: jsonspans.Scan) -> list[bytes]:
    return [data[p.start : p.end] for p in scan.pieces]


def buried(value: object, depth: int) -> object:
    """`value` inside `depth` containers: deeper than the regex shortcut takes whole."""
    for level in range(depth):
        value = [value] if level % 2 else {"k": value, "n": [1, 2]}
    return value


@given(st.lists(VALUES), st.integers(0, len(LAYOUTS) - 1), st.booleans(), st.integers(0, 6))
def test_array_spans_decode_back_to_the_elements(
    elements: list[Any], layout: int, ascii_only: bool, depth: int
) -> None:
    items = [buried(element, depth) for element in elements]
    body = encode(items, layout, ascii_only)
    scan = jsonspans.scan(b" \n" + body + b"\r\n")
    assert scan.problem is None
    assert [json.loads(piece) for piece in pieces(b" \n" + body + b"\r\n", scan)] == items


@given(st.dictionaries(TEXT, VALUES), st.integers(0, len(LAYOUTS) - 1), st.booleans())
def test_object_spans_are_its_keys_and_values(
    members: dict[str, Any], layout: int, ascii_only: bool
) -> None:
    data = encode(members, layout, ascii_only)
    scan = jsonspans.scan(data)
    assert scan.problem is None
    found = {}
    for piece in scan.pieces:
        key_start, key_end = piece.key(data)
        value_start, value_end = piece.value(data)
        found[json.loads(data[key_start:key_end])] = json.loads(data[value_start:value_end])
    assert found == members
    assert len(scan.pieces) == len(members)


@given(st.lists(VALUES, min_size=1), st.integers(0, len(LAYOUTS) - 1), st.data())
def test_a_cut_array_keeps_the_elements_completed_before_the_cut(
    items: list[Any], layout: int, data: st.DataObject
) -> None:
    body = encode(items, layout, ascii_only=False)
    cut = data.draw(st.integers(1, len(body) - 1))
    scan = jsonspans.scan(body[:cut])
    assert scan.problem == TRUNCATED
    *complete, _ = pieces(body, scan)  # the last piece is the one the cut is in
    assert [json.loads(piece) for piece in complete] == items[: len(complete)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[]", []),
        (b" [ \n ] ", []),
        (b"{}", []),
        (b'[1, "a,]", {"b": [2, {"c": "}"}]}]', [b"1", b'"a,]"', b'{"b": [2, {"c": "}"}]}']),
        (b'["\\"", "\\\\", "x\\"]"]', [b'"\\""', b'"\\\\"', b'"x\\"]"']),
        (b"[[[[[[1, [2]]]]], 3]]", [b"[[[[[1, [2]]]]], 3]"]),
        (b"[1,,2,]", [b"1", b"", b"2", b""]),
        (b'["\xff\x00", \x00 ]', [b'"\xff\x00"', b"\x00"]),
    ],
    ids=[
        "empty",
        "empty spaced",
        "empty object",
        "brackets in strings",
        "escapes",
        "deep",
        "gaps",
        "bytes",
    ],
)
def test_well_delimited_containers(data: bytes, expected: list[bytes]) -> None:
    scan = jsonspans.scan(data)
    assert scan.problem is None
    assert pieces(data, scan) == expected


@pytest.mark.parametrize(
    ("data", "problem", "expected", "at"),
    [
        (b"[1, 2", TRUNCATED, [b"1", b"2"], 5),
        (b"[1, ", TRUNCATED, [b"1", b""], 4),
        (b'[1, "a]', TRUNCATED, [b"1", b'"a]'], 7),
        (b'[1, "a\\', TRUNCATED, [b"1", b'"a\\'], 7),
        (b'[1, {"a": [2, {"b": 3}', TRUNCATED, [b"1", b'{"a": [2, {"b": 3}'], 22),
        (b"[1, {2]}", MISMATCHED, [b"1", b"{2"], 6),
        (b"[1, 2}", MISMATCHED, [b"1", b"2"], 5),
        (b"[1, 2] 3", TRAILING, [b"1", b"2"], 7),
        (b"[1] ]", TRAILING, [b"1"], 4),
        (b'  "a"', NOT_A_CONTAINER, [], 2),
        (b"\x00[1]", NOT_A_CONTAINER, [], 0),
        (b"", NOT_A_CONTAINER, [], 0),
    ],
)
def test_how_far_a_malformed_container_got(
    data: bytes, problem: str, expected: list[bytes], at: int
) -> None:
    scan = jsonspans.scan(data)
    assert (scan.problem, pieces(data, scan), scan.at) == (problem, expected, at)


def test_the_work_is_bounded_by_pieces_and_depth() -> None:
    scan = jsonspans.scan(b"[" + b"1," * 1_000_000, max_pieces=3)
    assert (scan.problem, len(scan.pieces)) == (TOO_MANY, 4)
    assert jsonspans.scan(b"[1, 2, 3]", max_pieces=3).problem is None
    data = b"[1, " + b"[" * 1_000_000
    scan = jsonspans.scan(data)
    assert (scan.problem, scan.at) == (TOO_DEEP, 4 + 1023)  # nested 1025 deep there
    assert pieces(data, scan) == [b"1", b"[" * 1023]
    # The innermost levels, taken whole by the regex shortcut, are not counted.
    deep = b"[" * 50 + b"]" * 50
    assert jsonspans.scan(deep, max_depth=47).problem is None
    assert jsonspans.scan(deep, max_depth=46).problem == TOO_DEEP
