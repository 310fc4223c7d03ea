"""Events as producers send them: decoding, validation with precise errors, rows for ClickHouse.

Why msgspec and not pydantic: this runs for every event on the hot path
(target 100,000 events/s per core). msgspec decodes JSON straight into typed
structs in C, validating types and lengths on the way, at about 1 µs per event;
pydantic would cost several times that. A valid batch is decoded in one call;
only a batch that fails is decoded again item by item, so that *every* bad
event is reported (index, NDJSON line, field, what is allowed), not just the
first one.

A batch is all or nothing: `prepare` returns rows for every event or raises
`InvalidBatch` listing the errors; the HTTP layer writes nothing of a rejected
batch. Validation must catch everything ClickHouse would refuse (an invalid
date, say): a row the engine cannot parse would make the writer retry its
insert forever.

The row layout is `tenantry.clickhouse.schema.EVENT_COLUMNS` (a unit test checks
that `Row` matches it): `properties` is kept as the JSON text the producer sent
(never decoded: `msgspec.Raw`), timestamps are normalised to UTC text
`YYYY-MM-DD hh:mm:ss.fff`, which every ClickHouse parses whatever its
`date_time_input_format`.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

MAX_EVENT_NAME = 200
MAX_USER_ID = 256
MAX_PROPERTIES_BYTES = 32 * 1024
MAX_FUTURE = dt.timedelta(hours=24)
MAX_ERRORS = 100
FIELDS = ("event", "user_id", "timestamp", "properties", "event_id")


class Event(msgspec.Struct, forbid_unknown_fields=True):
    """One event as a producer sends it (JSON object)."""

    event: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_NAME)]
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USER_ID)]
    timestamp: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    properties: msgspec.Raw = msgspec.Raw()
    event_id: uuid.UUID | None = None


class Row(msgspec.Struct):
    """One row of the events table, in column order (see schema.EVENT_COLUMNS)."""

    event_id: str
    timestamp: str
    event: str
    user_id: str
    properties: str
    received_at: str
    batch_id: str


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
            "properties": f"a JSON object of at most {MAX_PROPERTIES_BYTES} bytes",
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

    def as_json(self) -> dict[str, Any]:
        return {
            "error": "invalid_batch",
            "message": f"{self.total} error(s); nothing of this batch was accepted",
            "errors": [error.as_json() for error in self.errors],
            "truncated": self.total > len(self.errors),
        }


_EVENT = msgspec.json.Decoder(Event)
_EVENTS = msgspec.json.Decoder(list[Event])
_RAWS = msgspec.json.Decoder(list[msgspec.Raw])
_ENCODER = msgspec.json.Encoder()
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"field `([^`]+)`")


def _msgspec_error(
    exc: Exception, *, index: int | None, line: int | None, limits: Limits
) -> EventError:
    """An EventError from msgspec's message ("Expected `str`, got `int` - at `$.user_id`")."""
    text = str(exc)
    if not isinstance(exc, msgspec.ValidationError):  # ValidationError is a DecodeError too
        return EventError(index, line, None, f"malformed JSON: {text}", limits.allowed(None))
    match = _AT.match(text)
    message = match.group("message") if match else text
    path = (match.group("path") if match else "") or ""
    field: str | None = path.lstrip(".").split(".")[0].split("[")[0] or None
    named = _NAMED.search(message)
    if field is None and named:
        field = named.group(1)
    if "unknown field" in message:
        allowed = "only the fields " + ", ".join(FIELDS)
    else:
        allowed = limits.allowed(field if field in FIELDS else None)
    return EventError(index, line, field, message, allowed)


def _utc_text(value: dt.datetime) -> str:
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


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
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            errors.append(_msgspec_error(exc, index=index, line=number, limits=limits))
        index += 1
    return events, positions, lines, errors


def _decode_array(body: bytes, limits: Limits) -> tuple[list[Event], list[int], list[EventError]]:
    """Events, their positions, and the errors of those that failed."""
    try:
        events = _EVENTS.decode(body)
        return events, list(range(len(events))), []
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        return [], [], [_msgspec_error(exc, index=None, line=None, limits=limits)]
    try:
        raws = _RAWS.decode(body)
    except msgspec.ValidationError:
        message = "the body must be a JSON array of event objects"
        return [], [], [EventError(None, None, None, message, limits.allowed(None))]
    events = []
    positions: list[int] = []
    errors: list[EventError] = []
    for index, raw in enumerate(raws):
        try:
            events.append(_EVENT.decode(raw))
            positions.append(index)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            errors.append(_msgspec_error(exc, index=index, line=None, limits=limits))
    return events, positions, errors


def _timestamp(value: str) -> tuple[dt.datetime, str]:
    """The instant and its ClickHouse text (UTC) of an RFC 3339 timestamp; ValueError if not one.

    `fromisoformat` validates (a row ClickHouse cannot parse would block the
    writer); the common UTC forms (`...Z`, `...+00:00`) are then turned into
    ClickHouse's text by slicing, which costs a fraction of formatting a datetime.
    """
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = dt.datetime.fromisoformat(value.upper())  # RFC 3339 allows `t` and `z`
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    if (
        parsed.tzinfo is dt.UTC  # `Z`, `+00:00` and `-00:00` alike
        and len(value) >= 20
        and value[4] == "-"
        and value[10] in "Tt "
        and value[16] == ":"
        and value[19] in ".Zz+-"
    ):
        fraction = value[19:23].rstrip("Zz+-") if value[19] == "." else ""
        return parsed, value[:10] + " " + value[11:19] + fraction
    return parsed, _utc_text(parsed)


# Event ids for events sent without one: a random prefix per batch + the
# position as 12 hex digits, from a table (formatting per event costs more).
_SUFFIXES = [f"{i:012x}" for i in range(10_000)]


def _suffix(index: int) -> str:
    return _SUFFIXES[index] if index < len(_SUFFIXES) else f"{index:012x}"


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
    events: list[Event], where: _Where, *, now: dt.datetime, batch_id: str
) -> tuple[list[Row], list[EventError]]:
    """Rows for the events, checking what the types cannot say on the way:
    properties is a JSON object within its size, the timestamp is RFC 3339 and
    within the retention window. One pass: this is the hot loop."""
    limits = where.limits
    oldest = now - dt.timedelta(days=limits.retention_days)
    newest = now + limits.max_future
    received = _utc_text(now)
    prefix = str(uuid.uuid4())[:24]
    rows: list[Row] = []
    errors: list[EventError] = []
    for i, event in enumerate(events):
        props = event.properties
        if len(props):
            text = bytes(props).decode()
            if text[0] != "{" and text.lstrip()[:1] != "{":
                errors.append(where.error(i, "properties", "properties must be a JSON object"))
            elif len(props) > MAX_PROPERTIES_BYTES:
                message = f"properties is {len(props)} bytes, over {MAX_PROPERTIES_BYTES}"
                errors.append(where.error(i, "properties", message))
        else:
            text = "{}"
        value = event.timestamp
        if value is None:
            ts_text = received
        else:
            try:
                parsed, ts_text = _timestamp(value)
            except ValueError as exc:
                message = f"timestamp {value!r} is not an RFC 3339 timestamp"
                if "no UTC offset" in str(exc):
                    message = f"timestamp {value!r} has no UTC offset (add Z or +hh:mm)"
                errors.append(where.error(i, "timestamp", message))
                continue
            if not oldest <= parsed <= newest:
                late = parsed < oldest
                message = f"timestamp {value} is " + (
                    "older than the retention" if late else "too far in the future"
                )
                errors.append(where.error(i, "timestamp", message))
        rows.append(
            Row(
                event_id=str(event.event_id) if event.event_id else prefix + _suffix(i),
                timestamp=ts_text,
                event=event.event,
                user_id=event.user_id,
                properties=text,
                received_at=received,
                batch_id=batch_id,
            )
        )
    return rows, errors


def prepare(
    body: bytes, *, ndjson: bool, now: dt.datetime, limits: Limits, batch_id: str
) -> tuple[bytes, int]:
    """JSONEachRow rows for the events table and their count, or InvalidBatch.

    Errors are listed in batch order: `index` is the 0-based position of the
    event in the batch (blank NDJSON lines do not count), `line` the 1-based
    NDJSON line. Events without `event_id` get one from a random per-batch
    prefix (74 random bits) and their position; events without `timestamp`
    get the time of receipt.
    """
    lines: list[int] | None
    if ndjson:
        events, positions, lines, errors = _decode_ndjson(body, limits)
    else:
        events, positions, errors = _decode_array(body, limits)
        lines = None
    if errors and errors[0].index is None:
        raise InvalidBatch(errors, total=len(errors))
    if not events and not errors:
        message = "the batch holds no events"
        raise InvalidBatch([EventError(None, None, None, message, limits.allowed(None))], total=1)
    count = len(events) + len(errors)
    if count > limits.max_events:
        message = f"the batch holds {count} events, over the limit of {limits.max_events}"
        raise InvalidBatch([EventError(None, None, None, message, message)], total=1)
    rows, more = _rows(events, _Where(positions, lines, limits), now=now, batch_id=batch_id)
    if errors or more:
        every = sorted(errors + more, key=lambda e: e.index or 0)
        raise InvalidBatch(every, total=len(every))
    return _ENCODER.encode_lines(rows), len(rows)
