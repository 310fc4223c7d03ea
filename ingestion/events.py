"""Events as producers send them: decoding, validation with precise errors, rows for ClickHouse.

Why msgspec and not pydantic: this runs for every event on the hot path
(target 100,000 events/s per core). msgspec decodes JSON straight into typed
structs in C, validating types and lengths on the way, at about 1 µs per event;
pydantic would cost several times that. A valid batch is decoded in one call;
only a batch that fails is decoded again item by item, so that *every* bad
event is reported (index, NDJSON line, field, what is allowed), not just the
first one.

Where an error is never comes from msgspec's message or exception class (both
change between versions): on the failure path the events' bytes are found by
`ingestion.jsonspans`, an event's members likewise, and the field is the
member that holds the first byte that is not UTF-8, or the first whose value
does not decode with its own field's decoder (made from `Event`), or a
required one that is missing. msgspec's text is at most quoted in the message.

A batch is all or nothing: `prepare` returns rows for every event or raises
`InvalidBatch` listing the errors; the HTTP layer writes nothing of a rejected
batch. Validation must catch everything ClickHouse would refuse (an invalid
date, say): a row the engine cannot parse would make the writer retry its
insert forever.

Rows are ClickHouse's RowBinary, in the column order of
`tenantry.clickhouse.schema.EVENT_COLUMNS` (`COLUMNS` below; a unit test checks
that they match). Why RowBinary and not JSONEachRow: the engine parses it for
half the CPU or less (about 1.3 against 2.8 µs per row on chDB, merges left
out), it takes less than half the room in the Redis Stream (about 120 against
280 bytes per event), and building it costs less than building and encoding
JSON rows did (the per-event loop is about 1.9 against 2.9 µs). RowBinary
batches concatenate into one valid insert, so the writer passes entries to the
engine without parsing or joining them. `properties` is kept as the JSON text
the producer sent (never decoded: `msgspec.Raw`); timestamps are instants in
milliseconds since the epoch (UTC), truncated to the millisecond; `event_id`
is the UUID as ClickHouse writes it (high then low 64 bits, each
little-endian). `read_rows` turns rows back into text, for tests and debugging.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from ingestion import jsonspans

MAX_EVENT_NAME = 200
MAX_USER_ID = 256
MAX_PROPERTIES_BYTES = 32 * 1024
MAX_PROPERTIES_DEPTH = 32
"""How deep `properties` may nest (`{"a": {"b": 1}}` is 2): deeper JSON is no event
property anyone queries, and it is where decoders (msgspec, ClickHouse's JSON
functions) hit their recursion limits."""
_DEEPER_BYTES = 2 * MAX_PROPERTIES_DEPTH + 1  # the shortest JSON nested deeper is longer
MAX_FUTURE = dt.timedelta(hours=24)
MAX_ERRORS = 100


class Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One event as a producer sends it (JSON object).

    `gc=False`: thousands are made per request, and none can be part of a
    reference cycle (strings, a UUID, raw bytes), so the cycle collector need
    not track them (fewer collections, shorter pauses on the request path).
    """

    event: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_NAME)]
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USER_ID)]
    timestamp: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    properties: msgspec.Raw = msgspec.Raw()
    event_id: uuid.UUID | None = None


FIELDS = tuple(f.encode_name for f in msgspec.structs.fields(Event))
COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "UUID"),
    ("timestamp", "DateTime64(3)"),
    ("event", "String"),
    ("user_id", "String"),
    ("properties", "String"),
    ("received_at", "DateTime64(3)"),
    ("batch_id", "String"),
)
"""The RowBinary layout `prepare` writes: the events table's columns, in order.

Types are as RowBinary encodes them (`LowCardinality(String)` travels as
`String`; DateTime64's zone does not change the encoding)."""

_HEAD = struct.Struct("<QQq")  # event_id (high, low 64 bits), timestamp (ms)
_MS = struct.Struct("<q")
_LOW_64 = (1 << 64) - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)


def _varint(value: int) -> bytes:
    """ClickHouse's length prefix (unsigned LEB128)."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Length prefixes of every string length a valid event can have (properties are
# at most MAX_PROPERTIES_BYTES, names and user ids are shorter): a list lookup
# per string instead of a function call.
_LENGTHS = [_varint(n) for n in range(MAX_PROPERTIES_BYTES + 1)]
_NO_PROPERTIES = _LENGTHS[2] + b"{}"
# Encoded event names (few distinct ones per tenant); bounded against odd producers.
_NAMES: dict[str, bytes] = {}
_MAX_NAMES = 10_000


def _string(text: str) -> bytes:
    """A RowBinary string."""
    data = text.encode()
    return _varint(len(data)) + data


def _millis(value: dt.datetime) -> int:
    """Milliseconds since the epoch of an aware datetime, truncated."""
    return (value - _EPOCH) // _ONE_MS


@dataclass(frozen=True)
class Limits:
    """What the producer may send, from the service settings."""

    retention_days: int
    max_events: int = 10_000
    max_future: dt.timedelta = MAX_FUTURE

    def allowed(self, field: str | None) -> str:
        """What is allowed for `field`, in words, for error messages."""
        return {
            "event": f"a non-empty string of at most {MAX_EVENT_NAME} characters",
            "user_id": f"a non-empty string of at most {MAX_USER_ID} characters",
            "timestamp": (
                "an RFC 3339 timestamp with a UTC offset (e.g. 2026-11-27T11:00:00.123Z), "
                f"at most {self.retention_days} days old and at most "
                f"{int(self.max_future.total_seconds() // 3600)} h ahead; "
                "omit it to use the time of receipt"
            ),
            "properties": (
                f"a JSON object of at most {MAX_PROPERTIES_BYTES} bytes, "
                f"nested at most {MAX_PROPERTIES_DEPTH} deep"
            ),
            "event_id": "a UUID, e.g. 0b7e4f8e-7c1e-4d3f-9a51-2f1f0c6a1b2c (generated when absent)",
        }.get(field or "", "a JSON object with the fields " + ", ".join(FIELDS))


@dataclass(frozen=True)
class EventError:
    """What is wrong with one event (or with the body, when `index` is None)."""

    index: int | None
    line: int | None
    field: str | None
    message: str
    allowed: str

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "allowed": self.allowed,
        }


class InvalidBatch(Exception):
    """The batch is rejected; `errors` says why (at most MAX_ERRORS of them)."""

    def __init__(self, errors: list[EventError], *, total: int) -> None:
        super().__init__(f"{total} invalid event(s)")
        self.errors = errors[:MAX_ERRORS]
        self.total = total

    @property
    def message(self) -> str:
        return f"{self.total} error(s); nothing of this batch was accepted"

    def details(self) -> dict[str, Any]:
        """What goes beside code and message in the error body: every error, in order."""
        return {
            "errors": [error.as_json() for error in self.errors],
            "truncated": self.total > len(self.errors),
        }


_EVENT = msgspec.json.Decoder(Event)
_EVENTS = msgspec.json.Decoder(list[Event])
# Whatever msgspec raises for bytes it refuses: its own errors, UnicodeDecodeError
# (a ValueError, raised by some versions for text that is not UTF-8) and
# RecursionError (nesting deeper than it goes). Which one it is decides nothing:
# what is wrong, and where, is found by `_diagnose`.
_REFUSED = (msgspec.MsgspecError, ValueError, RecursionError)
# The failure path decodes an event's members one by one, each with a decoder of
# its field's type (constraints included), taken from `Event` itself.
_FIELDS = msgspec.structs.fields(Event)
_DECODERS = {f.encode_name: msgspec.json.Decoder(f.type) for f in _FIELDS}
_REQUIRED = [f.encode_name for f in _FIELDS if f.required]
_KEY = msgspec.json.Decoder(str)
_ANY = msgspec.json.Decoder()
_KINDS = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}
_CUT = "malformed JSON: the event is cut short (the body ends inside it)"
_TOO_DEEP = f"the event is nested more than {jsonspans.MAX_DEPTH} deep"


def _last_member(data: bytes, pieces: list[jsonspans.Piece]) -> str | None:
    """The field of the event's last member (where a scan stopped), when it is one."""
    if not pieces or pieces[-1].colon < 0:
        return None
    try:
        key = _KEY.decode(data[slice(*pieces[-1].key(data))])
    except _REFUSED:
        return None
    return key if key in _DECODERS else None


def _too_deep(field: str | None) -> str | None:
    return f"{field} is nested more than {MAX_PROPERTIES_DEPTH} deep" if field else None


def _only_fields() -> str:
    return "only the fields " + ", ".join(FIELDS)


def _too_many(limits: Limits) -> EventError:
    most = limits.max_events
    message = f"the batch holds more than {most} events, over the limit of {most}"
    return EventError(None, None, None, message, message)


def _first_non_utf8(data: bytes) -> int | None:
    """The offset of the first byte of `data` that is not part of UTF-8 text, or None."""
    if data.isascii():
        return None
    try:
        data.decode()
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _diagnose(data: bytes, index: int, line: int | None, limits: Limits) -> EventError:
    """What is wrong with one event that msgspec refused (`data`: its JSON text).

    Found by construction, never from msgspec's message (quoted at most): the
    first byte that is not UTF-8 and the member it is in; then the shape (an
    object, brackets closed); then each member in order: a known key, a value
    that decodes as its field's type; then the required fields.
    """

    def error(field: str | None, message: str, allowed: str | None = None) -> EventError:
        return EventError(index, line, field, message, allowed or limits.allowed(field))

    if not data:
        return error(None, "malformed JSON: an event is missing here (a comma too many?)")
    scan = jsonspans.scan(data)
    bad = _first_non_utf8(data)
    if bad is not None:
        for piece in scan.pieces if data[0] == ord("{") else ():
            key_start, key_end = piece.key(data)
            if key_start <= bad < key_end:
                return error(None, "a key of this event is not UTF-8 text")
            value_start, value_end = piece.value(data)
            if value_start <= bad < value_end:
                try:
                    key = _KEY.decode(data[key_start:key_end])
                except _REFUSED:
                    break
                if key not in _DECODERS:
                    message = f"unknown field `{key}` (its value is not UTF-8 text either)"
                    return error(key, message, _only_fields())
                return error(key, f"{key} is not UTF-8 text")
        return error(None, "malformed JSON: the event holds bytes that are not UTF-8 text")
    if scan.problem == jsonspans.NOT_A_CONTAINER or data[0] != ord("{"):
        try:
            value = _ANY.decode(data)
        except _REFUSED as exc:
            return error(None, f"malformed JSON: {exc}")
        kind = _KINDS.get(type(value), "a number")
        return error(None, f"an event must be a JSON object, not {kind}")
    if scan.problem == jsonspans.TRUNCATED:
        return error(None, _CUT)
    if scan.problem == jsonspans.TOO_DEEP:
        field = _last_member(data, scan.pieces)
        return error(field, _too_deep(field) or _TOO_DEEP)
    if scan.problem == jsonspans.MISMATCHED:
        return error(None, "malformed JSON: a closing bracket that does not match the open one")
    if scan.problem == jsonspans.TRAILING:
        return error(None, "malformed JSON: something follows the event's closing `}`")
    present: set[str] = set()
    for piece in scan.pieces:
        if piece.colon < 0:
            return error(None, "malformed JSON: a member without `:`")
        key_start, key_end = piece.key(data)
        try:
            key = _KEY.decode(data[key_start:key_end])
        except _REFUSED as exc:
            return error(None, f"malformed JSON: a key is not a JSON string ({exc})")
        decoder = _DECODERS.get(key)
        if decoder is None:
            return error(key, f"unknown field `{key}`", _only_fields())
        value_start, value_end = piece.value(data)
        value = data[value_start:value_end]
        try:
            decoder.decode(value)
        except _REFUSED as exc:
            try:
                _ANY.decode(value)
            except _REFUSED as malformed:
                if jsonspans.depth(value, stop_above=MAX_PROPERTIES_DEPTH) > MAX_PROPERTIES_DEPTH:
                    return error(key, f"{key} is nested more than {MAX_PROPERTIES_DEPTH} deep")
                return error(key, f"malformed JSON in {key}: {malformed}")
            return error(key, f"invalid {key}: {exc}")
        present.add(key)
    for name in _REQUIRED:
        if name not in present:
            return error(name, f"missing required field `{name}`")
    return error(None, "malformed JSON")  # refused for a reason not found above


def _decode_ndjson(
    body: bytes, limits: Limits
) -> tuple[list[Event], list[int], list[int], list[EventError]]:
    """Events, their positions and lines, and the errors of those that failed."""
    events: list[Event] = []
    positions: list[int] = []
    lines: list[int] = []
    errors: list[EventError] = []
    decode = _EVENT.decode
    index = 0
    for number, text in enumerate(body.split(b"\n"), start=1):
        if not text.strip():
            continue
        try:
            events.append(decode(text))
            positions.append(index)
            lines.append(number)
        except _REFUSED:
            if index >= limits.max_events:  # refused for its size: not worth going on
                return [], [], [], [_too_many(limits)]
            errors.append(_diagnose(text.strip(b" \t\r"), index, number, limits))
        index += 1
    return events, positions, lines, errors


def _decode_array(body: bytes, limits: Limits) -> tuple[list[Event], list[int], list[EventError]]:
    """Events, their positions, and the errors of those that failed."""
    try:
        events = _EVENTS.decode(body)
        return events, list(range(len(events))), []
    except _REFUSED as exc:
        refused = str(exc)
    # The failure path: find each event's bytes, decode them one by one.
    if body.lstrip(b" \t\r\n")[:1] != b"[":
        message = "the body must be a JSON array of event objects"
        return [], [], [EventError(None, None, None, message, limits.allowed(None))]
    scan = jsonspans.scan(body, max_pieces=limits.max_events)
    if scan.problem == jsonspans.TOO_MANY:
        return [], [], [_too_many(limits)]
    if scan.problem == jsonspans.TRAILING:
        message = f"malformed JSON: something follows the array (byte {scan.at})"
        return [], [], [EventError(None, None, None, message, limits.allowed(None))]
    events = []
    positions: list[int] = []
    errors: list[EventError] = []
    last = len(scan.pieces) - 1
    for index, piece in enumerate(scan.pieces):
        data = body[piece.start : piece.end]
        if index == last and scan.problem is not None:  # where the scan stopped
            if scan.problem == jsonspans.MISMATCHED:
                message = (
                    f"malformed JSON: a closing bracket that does not match the open one "
                    f"(byte {scan.at} of the body); the events after it were not read"
                )
            elif scan.problem == jsonspans.TOO_DEEP:
                # The event as far as the scan read it: the member the scan stopped in.
                part = body[piece.start : scan.at + 1]
                field = _last_member(part, jsonspans.scan(part).pieces)
                message = (_too_deep(field) or _TOO_DEEP) + "; the events after it were not read"
                errors.append(EventError(index, None, field, message, limits.allowed(field)))
                continue
            elif not data:
                message = "malformed JSON: the body ends where an event should start"
            elif data[:1] == b"{" and jsonspans.scan(data).problem is None:
                message = "malformed JSON: the body ends before the array's closing `]`"
            else:
                message = _CUT
            errors.append(EventError(index, None, None, message, limits.allowed(None)))
            break
        try:
            events.append(_EVENT.decode(data))
            positions.append(index)
        except _REFUSED:
            errors.append(_diagnose(data, index, None, limits))
    if not errors:  # msgspec refused the batch, yet no event alone: still refused
        message = f"malformed JSON: {refused}"
        errors.append(EventError(None, None, None, message, limits.allowed(None)))
    return events, positions, errors


def _lenient_timestamp(value: str) -> dt.datetime | None:
    """`value` parsed after the strict attempt failed (RFC 3339 allows `t` and `z`), or None."""
    try:
        return dt.datetime.fromisoformat(value.upper())
    except ValueError:
        return None


def _timestamp_error(value: str, parsed: dt.datetime | None) -> str:
    if parsed is None:
        return f"timestamp {value!r} is not an RFC 3339 timestamp"
    return f"timestamp {value!r} has no UTC offset (add Z or +hh:mm)"


def _name(event: str) -> bytes:
    """The event name as a RowBinary string, from a bounded cache."""
    encoded = _string(event)
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[event] = encoded
    return encoded


@dataclass(frozen=True)
class _Where:
    """Where the decoded events came from: batch positions and NDJSON lines."""

    positions: list[int]
    lines: list[int] | None
    limits: Limits

    def error(self, i: int, field: str, message: str) -> EventError:
        line = self.lines[i] if self.lines is not None else None
        return EventError(self.positions[i], line, field, message, self.limits.allowed(field))


def _rows(
    events: list[Event], where: _Where, *, now: dt.datetime, batch_id: str, check_utf8: bool
) -> tuple[list[Any], list[EventError]]:
    """RowBinary pieces for the events (to be joined), checking what the types
    cannot say on the way: properties is a JSON object within its size (and
    UTF-8, when the body as a whole was not), the timestamp is RFC 3339 with an
    offset and within the retention window. One pass: this is the hot loop.

    Events without `event_id` get one from a random per-batch prefix (74
    random bits) and their position (the low 48 bits); events without
    `timestamp` get the time of receipt.
    """
    limits = where.limits
    oldest = now - dt.timedelta(days=limits.retention_days)
    newest = now + limits.max_future
    received = _millis(now)
    tail = _MS.pack(received) + _string(batch_id)
    prefix = uuid.uuid4().int >> 48 << 48
    id_high, id_low = prefix >> 64, prefix & _LOW_64
    head, lengths, names = _HEAD.pack, _LENGTHS, _NAMES
    parse, epoch, one_ms = dt.datetime.fromisoformat, _EPOCH, _ONE_MS
    out: list[Any] = []
    errors: list[EventError] = []
    for i, event in enumerate(events):
        props = event.properties
        size = len(props)
        if size:
            text = bytes(props)
            if text[0] != 0x7B and text.lstrip()[:1] != b"{":
                errors.append(where.error(i, "properties", "properties must be a JSON object"))
            elif size > MAX_PROPERTIES_BYTES:
                message = f"properties is {size} bytes, over {MAX_PROPERTIES_BYTES}"
                errors.append(where.error(i, "properties", message))
                size = 0  # the batch is refused: this row is never used
            elif (
                # Only JSON with more opening brackets than the limit can be nested that
                # deep: counted in one C pass (about 0.1 µs), then measured exactly.
                size > _DEEPER_BYTES
                and size - len(text.translate(None, b"{[")) > MAX_PROPERTIES_DEPTH
                and jsonspans.depth(text, stop_above=MAX_PROPERTIES_DEPTH) > MAX_PROPERTIES_DEPTH
            ):
                message = f"properties is nested more than {MAX_PROPERTIES_DEPTH} deep"
                errors.append(where.error(i, "properties", message))
            elif check_utf8:
                try:
                    text.decode()
                except UnicodeDecodeError:
                    message = "properties is not UTF-8 text"
                    errors.append(where.error(i, "properties", message))
        value = event.timestamp
        if value is None:
            millis = received
        else:
            try:
                parsed: dt.datetime | None = parse(value)
            except ValueError:
                parsed = _lenient_timestamp(value)
            if parsed is None or parsed.tzinfo is None:
                errors.append(where.error(i, "timestamp", _timestamp_error(value, parsed)))
                continue
            if not oldest <= parsed <= newest:
                late = parsed < oldest
                message = f"timestamp {value} is " + (
                    "older than the retention" if late else "too far in the future"
                )
                errors.append(where.error(i, "timestamp", message))
            millis = (parsed - epoch) // one_ms
        ident = event.event_id
        if ident is None:
            first_row = head(id_high, id_low | i, millis)
        else:
            number = ident.int
            first_row = head(number >> 64, number & _LOW_64, millis)
        name = names.get(event.event) or _name(event.event)
        user = event.user_id.encode()
        if size:
            out += (first_row, name, lengths[len(user)], user, lengths[size], props, tail)
        else:
            out += (first_row, name, lengths[len(user)], user, _NO_PROPERTIES, tail)
    return out, errors


def prepare(
    body: bytes, *, ndjson: bool, now: dt.datetime, limits: Limits, batch_id: str
) -> tuple[bytes, int]:
    """RowBinary rows for the events table (`COLUMNS`) and their count, or InvalidBatch.

    Errors are listed in batch order: `index` is the 0-based position of the
    event in the batch (blank NDJSON lines do not count), `line` the 1-based
    NDJSON line.
    """
    where: _Where
    if ndjson:
        events, positions, lines, errors = _decode_ndjson(body, limits)
        where = _Where(positions, lines, limits)
    else:
        events, positions, errors = _decode_array(body, limits)
        where = _Where(positions, None, limits)
    if errors and errors[0].index is None:
        raise InvalidBatch(errors, total=len(errors))
    if not events and not errors:
        message = "the batch holds no events"
        raise InvalidBatch([EventError(None, None, None, message, limits.allowed(None))], total=1)
    count = len(events) + len(errors)
    if count > limits.max_events:
        message = f"the batch holds {count} events, over the limit of {limits.max_events}"
        raise InvalidBatch([EventError(None, None, None, message, message)], total=1)
    rows, more = _rows(
        events, where, now=now, batch_id=batch_id, check_utf8=_first_non_utf8(body) is not None
    )
    if errors or more:
        every = sorted(errors + more, key=lambda e: e.index or 0)
        raise InvalidBatch(every, total=len(every))
    return b"".join(rows), len(events)


def read_rows(data: bytes) -> list[dict[str, str]]:
    """The rows of `prepare`'s RowBinary as text, as ClickHouse would show them.

    For tests and debugging, not the hot path: event_id as a UUID, timestamps as
    UTC `YYYY-MM-DD hh:mm:ss.fff`, strings as text.
    """
    rows: list[dict[str, str]] = []
    view = memoryview(data)
    at = 0

    def string() -> str:
        nonlocal at
        size = shift = 0
        while True:
            byte = view[at]
            at += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        text = bytes(view[at : at + size]).decode()
        at += size
        return text

    def instant(millis: int) -> str:
        return (_EPOCH + millis * _ONE_MS).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    while at < len(data):
        high, low, millis = _HEAD.unpack_from(view, at)
        at += _HEAD.size
        row = {"event_id": str(uuid.UUID(int=high << 64 | low)), "timestamp": instant(millis)}
        row["event"], row["user_id"], row["properties"] = string(), string(), string()
        (received,) = _MS.unpack_from(view, at)
        at += _MS.size
        row["received_at"], row["batch_id"] = instant(received), string()
        rows.append(row)
    return rows
