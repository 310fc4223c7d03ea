"""Where the elements of a JSON array, or the members of a JSON object, lie in the bytes.

Why this exists: when a batch fails to decode, every error must name the event
it is in (its index, and its line for NDJSON) and, where it can, the field.
msgspec cannot be asked for that: its errors say where they are only in their
text, and both the text and the exception class change between versions (for
a string that is not UTF-8, 0.18 raises UnicodeDecodeError and 0.23
`DecodeError("Invalid UTF-8 encoded string")`, with no position at all). So
the failure path of `ingestion.events` finds the boundaries itself, with this
scanner, and then only asks msgspec whether each piece decodes.

It is not a JSON parser. It follows strings (with their escapes) and the
nesting of brackets, which is all that element and member boundaries depend
on, and leaves everything else (numbers, literals, stray bytes, NUL) to the
decoder of each piece. On valid JSON its spans are exact (a property test
checks that they decode back to the elements); on malformed JSON it says how
far it got: the pieces up to the problem and what the problem is.

It is never on the hot path: a valid batch is decoded by msgspec in one call
and does not come here. Shallow containers are taken whole by the regex engine,
so a typical event costs a few microseconds, and the work is bounded for any
input (`max_pieces`, `max_depth`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRUNCATED = "truncated"
"""The data ends before the container is closed (or inside a string)."""
MISMATCHED = "mismatched"
"""A closing bracket that is not the one of the innermost open container."""
TRAILING = "trailing"
"""Something other than whitespace follows the container's closing bracket."""
NOT_A_CONTAINER = "not a container"
"""The data (whitespace aside) does not start with `[` or `{`."""
TOO_MANY = "too many"
"""The container has more than `max_pieces` pieces; the scan stopped there."""
TOO_DEEP = "too deep"
"""Containers are nested more than `max_depth` deep; the scan stopped there."""

MAX_DEPTH = 1024
"""The default `max_depth`: deeper than any decoder here accepts (msgspec's limit
is about 1000), so that the scan stops early without calling valid data invalid."""

_SHORTCUT_DEPTH = 3
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'


def _whole(depth: int) -> bytes:
    """A pattern for a whole container nested at most `depth` deep, brackets matched."""
    inner = rb"|" + _whole(depth - 1) if depth > 1 else b""
    inside = rb"(?:" + _STRING + rb'|[^"\[\]{}]++' + inner + rb")*+"
    return rb"(?:\{" + inside + rb"\}|\[" + inside + rb"\])"


# Tokens. A whole container nested at most _SHORTCUT_DEPTH deep is one token (a
# shortcut, taken by the regex engine rather than a Python loop, with the same
# result: a complete container holds no separator of the level being scanned);
# otherwise a bracket is one. A lone `"` is a string the data ends in.
# Directly inside the container being split, commas and colons count, so
# strings are tokens (skipping them is what keeps their commas out) and the
# search steps over anything else. Deeper, only brackets count: the run of
# strings and other bytes before the next bracket is skipped in one match.
_TOP = re.compile(_STRING + rb"|" + _whole(_SHORTCUT_DEPTH) + rb'|[\[\]{},:"]', re.DOTALL)
_DEEP = re.compile(
    rb"(?:" + _STRING + rb'|[^"\[\]{}]++)*+(' + _whole(_SHORTCUT_DEPTH) + rb'|[\[\]{}"]|\Z)',
    re.DOTALL,
)
_WHITESPACE = b" \t\r\n"  # JSON's: NUL, form feed and the like are not
_CLOSING_OF = {ord("["): ord("]"), ord("{"): ord("}")}
_CLOSERS = frozenset(_CLOSING_OF.values())
_QUOTE, _COMMA = ord('"'), ord(",")


@dataclass(frozen=True)
class Piece:
    """One element of an array, or one `key: value` member of an object.

    `start`/`end` delimit its bytes, whitespace around them left out; `colon`
    is the offset of its first `:` outside strings and nested containers, -1
    when it has none (always the case in an array of scalars).
    """

    start: int
    end: int
    colon: int

    def key(self, data: bytes) -> tuple[int, int]:
        """The span before the colon (a member's key), whitespace left out."""
        return _strip(data, self.start, self.colon if self.colon >= 0 else self.end)

    def value(self, data: bytes) -> tuple[int, int]:
        """The span after the colon (a member's value); empty without a colon."""
        if self.colon < 0:
            return self.end, self.end
        return _strip(data, self.colon + 1, self.end)


@dataclass(frozen=True)
class Scan:
    """The pieces of a container, in order, and what stopped the scan early.

    With `problem` None the container is well delimited and `pieces` are all
    of it. With TRUNCATED or MISMATCHED the last piece is the one the problem
    is in, cut at `at` (an empty piece when the data ends right after `[`, `{`
    or a comma). With TRAILING the pieces are complete and `at` is where the
    extra bytes start. With NOT_A_CONTAINER there are no pieces.
    """

    pieces: list[Piece]
    problem: str | None
    at: int


def _strip(data: bytes, start: int, end: int) -> tuple[int, int]:
    while start < end and data[start] in _WHITESPACE:
        start += 1
    while end > start and data[end - 1] in _WHITESPACE:
        end -= 1
    return start, end


def _piece(data: bytes, start: int, end: int, colon: int) -> Piece:
    start, end = _strip(data, start, end)
    return Piece(start, end, colon)


def scan(data: bytes, *, max_pieces: int | None = None, max_depth: int = MAX_DEPTH) -> Scan:
    """Split the JSON array or object `data` into its top-level pieces.

    The work is bounded for any input: the scan stops after `max_pieces`
    pieces (TOO_MANY) or at a container nested more than `max_depth` deep
    (TOO_DEEP, the last piece being the one it is in). The innermost levels
    that the regex shortcut takes whole (up to _SHORTCUT_DEPTH) do not count,
    so a container at most that much deeper still passes.
    """
    start, end = _strip(data, 0, len(data))
    if start == end or data[start] not in _CLOSING_OF:
        return Scan([], NOT_A_CONTAINER, start)
    expected = [_CLOSING_OF[data[start]]]  # the closing bracket of each open container
    pieces: list[Piece] = []
    begin, colon = start + 1, -1
    at = start + 1
    while True:
        if len(expected) == 1:
            top = _TOP.search(data, at)
            if top is None:
                break
            at, after = top.span()
        else:
            deep = _DEEP.match(data, at)
            assert deep is not None  # it matches at the end of the data, at the latest
            at, after = deep.span(1)
            if at == after:
                break
        char = data[at]
        if after > at + 1:
            pass  # a whole string or container
        elif char == _QUOTE:
            break  # the data ends inside this string
        elif char in _CLOSING_OF:
            expected.append(_CLOSING_OF[char])
            if len(expected) > max_depth:
                pieces.append(_piece(data, begin, at, colon))
                return Scan(pieces, TOO_DEEP, at)
        elif char in _CLOSERS:
            if char != expected.pop():
                pieces.append(_piece(data, begin, at, colon))
                return Scan(pieces, MISMATCHED, at)
            if not expected:
                last = _piece(data, begin, at, colon)
                if pieces or last.start < last.end:  # `[]` and `{}` have no piece
                    pieces.append(last)
                rest, _ = _strip(data, after, end)
                return Scan(pieces, TRAILING if rest < end else None, rest)
        elif len(expected) == 1:
            if char == _COMMA:
                pieces.append(_piece(data, begin, at, colon))
                if max_pieces is not None and len(pieces) > max_pieces:
                    return Scan(pieces, TOO_MANY, at)
                begin, colon = after, -1
            elif colon < 0:  # a colon
                colon = at
        at = after
    pieces.append(_piece(data, begin, len(data), colon))
    return Scan(pieces, TRUNCATED, len(data))


_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*+"|[\[\]{}]', re.DOTALL)


def depth(data: bytes, *, stop_above: int) -> int:
    """How deep the containers of the JSON value `data` nest (`{}` is 1, `{"a": []}` 2),
    counting brackets outside strings only; it stops counting once past `stop_above`
    (and returns that depth), so the work is bounded by where the answer is known."""
    level = deepest = 0
    for match in _BRACKETS.finditer(data):
        char = match.group()
        if char in (b"{", b"["):
            level += 1
            if level > deepest:
                deepest = level
                if deepest > stop_above:
                    break
        elif char in (b"}", b"]"):
            level -= 1
    return deepest
