"""The one interface the rest of Tenantry uses to talk to ClickHouse.

Everything that touches ClickHouse (schema provisioning in the operator, the
ingestion writer, dashboard validation and panel queries) goes through
`ClickHouseClient`: three calls, `command`, `query` and `insert`. Two adapters
implement it:

- `tenantry.clickhouse.chdb_client.ChdbClient`: chDB, the ClickHouse engine
  in-process. The embedded default for local runs and for tests.
- `tenantry.clickhouse.http_client.HttpClickHouseClient`: clickhouse-connect
  over HTTP, what every deployment uses.

Keeping the surface this small is deliberate: both adapters must behave the same
for everything here, and the integration tests check that they do. Query
parameters use ClickHouse's server-side syntax (`{name:Type}`) in both adapters,
so values never get spliced into SQL text.

Value conventions shared by both adapters:

- `query` returns a list of dicts, one per row, keys in column order.
  Integers come back as `int`, floats as `float`, `DateTime`/`DateTime64` as
  timezone-aware `datetime` (UTC when the column has no zone), `Date` as `date`,
  `UUID` as `uuid.UUID`, `Decimal` as `decimal.Decimal`, NULL as `None`.
- `insert` takes dicts whose keys are column names; values may be the Python
  types above or their ClickHouse text forms (`'2026-01-02 03:04:05.678'`).
  Both adapters send rows as JSONEachRow, so the same value is parsed the same
  way whichever adapter carries it. `insert_json` takes rows already encoded
  as JSONEachRow bytes, `insert_rowbinary` rows already encoded as RowBinary
  (the ingestion writer's fast path: no decode/encode, and the cheapest
  format for the engine to parse).

The async facade runs the blocking calls in a worker thread: neither chDB nor
clickhouse-connect's sync client blocks the event loop then.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]
Params = Mapping[str, Any]
InsertSettings = Mapping[str, int]
"""An insert's own query settings (``SETTINGS name = value``): plain names, integers."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code:\s*(\d+)")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")


class ClickHouseError(Exception):
    """A ClickHouse exception, whichever adapter raised it.

    `code` is ClickHouse's numeric error code (60 UNKNOWN_TABLE, 62 SYNTAX_ERROR,
    ...) when the engine reported one, else 0.
    """

    def __init__(self, message: str, *, code: int = 0, name: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.name = name

    @classmethod
    def from_message(cls, message: str) -> ClickHouseError:
        """Build the error from ClickHouse's text ("Code: 60. DB::Exception: ... (NAME)")."""
        code_match = _CODE.search(message)
        names = _NAME.findall(message)
        return cls(
            message.strip(),
            code=int(code_match.group(1)) if code_match else 0,
            name=names[-1] if names else "",
        )


@runtime_checkable
class ClickHouseClient(Protocol):
    """Command, query, insert: all the project needs from ClickHouse."""

    def command(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns no rows (DDL, ALTER, SET, ...)."""
        ...

    def query(self, sql: str, params: Params | None = None) -> list[Row]:
        """Run a SELECT (or SHOW, DESCRIBE, EXPLAIN) and return its rows."""
        ...

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, dedup_token: str | None = None
    ) -> None:
        """Insert rows into `table` (`name` or `database.name`).

        With `dedup_token`, a retried insert of the same batch is dropped by the
        engine (insert_deduplication_token): the table must keep a deduplication
        window (`non_replicated_deduplication_window` for MergeTree,
        `replicated_deduplication_window` for ReplicatedMergeTree).
        """
        ...

    def insert_json(
        self,
        table: str,
        data: bytes,
        *,
        dedup_token: str | None = None,
        settings: InsertSettings | None = None,
    ) -> None:
        """Insert rows already encoded as JSONEachRow (one JSON object per line).

        The fast path for the ingestion writer: events arrive as JSON, so they
        go to the engine without being decoded and encoded again in Python.
        `settings`: the insert's own query settings (integers; see `insert_statement`).
        """
        ...

    def insert_rowbinary(
        self,
        table: str,
        chunks: Sequence[bytes],
        *,
        dedup_token: str | None = None,
        settings: InsertSettings | None = None,
    ) -> None:
        """Insert rows encoded as RowBinary (all columns, in table order), as one insert.

        `chunks` are concatenated (each a whole number of rows); the ingestion
        writer passes one chunk per stream entry, so they are never joined in
        Python. Same deduplication as `insert`; `settings` as in `insert_json`.
        """
        ...

    def check_table(self, table: str) -> list[str]:
        """``CHECK TABLE`` of ``table`` (already quoted): every file of every part hashed
        and compared with the part's checksums, no column decoded. The parts that fail,
        each as ``part: reason`` (``failed_parts``); empty when all pass."""
        ...

    def close(self) -> None:
        """Release the connection; the client is unusable afterwards."""
        ...


CHECK_SETTINGS = {"check_query_single_value_result": 0}  # one row per part


def check_statement(table: str) -> str:
    """``CHECK TABLE <table> SETTINGS ...`` answering one row per part, as both adapters
    send it (`table` already quoted)."""
    settings = ", ".join(f"{name} = {value}" for name, value in CHECK_SETTINGS.items())
    return f"CHECK TABLE {table} SETTINGS {settings}"


def failed_parts(tsv: str) -> list[str]:
    """The failing parts in CHECK TABLE's per-part answer (TabSeparated: part_path,
    is_passed, message), each as ``part: message`` (pure)."""
    out = []
    for line in tsv.splitlines():
        part, _, rest = line.partition("\t")
        passed, _, message = rest.partition("\t")
        if passed.strip() != "1":
            out.append(f"{part}: {message.strip() or 'check failed'}")
    return out


class AsyncClickHouse:
    """The same three calls for asyncio code, run in a worker thread."""

    def __init__(self, client: ClickHouseClient) -> None:
        self.client = client

    async def command(self, sql: str, params: Params | None = None) -> None:
        await asyncio.to_thread(self.client.command, sql, params)

    async def query(self, sql: str, params: Params | None = None) -> list[Row]:
        return await asyncio.to_thread(self.client.query, sql, params)

    async def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, dedup_token: str | None = None
    ) -> None:
        await asyncio.to_thread(self.client.insert, table, rows, dedup_token=dedup_token)

    async def insert_json(
        self,
        table: str,
        data: bytes,
        *,
        dedup_token: str | None = None,
        settings: InsertSettings | None = None,
    ) -> None:
        await asyncio.to_thread(
            self.client.insert_json, table, data, dedup_token=dedup_token, settings=settings
        )

    async def insert_rowbinary(
        self,
        table: str,
        chunks: Sequence[bytes],
        *,
        dedup_token: str | None = None,
        settings: InsertSettings | None = None,
    ) -> None:
        await asyncio.to_thread(
            self.client.insert_rowbinary, table, chunks, dedup_token=dedup_token, settings=settings
        )

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


def quote_identifier(name: str) -> str:
    """Backquote one identifier, refusing anything but [A-Za-z_][A-Za-z0-9_]*.

    Tenant database and table names come from Kubernetes names and our own code;
    refusing odd characters is safer than escaping them.
    """
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return f"`{name}`"


def quote_table(table: str) -> str:
    """`db.table` or `table`, each part checked and backquoted."""
    parts = table.split(".")
    if len(parts) > 2:
        raise ValueError(f"table must be `name` or `database.name`: {table!r}")
    return ".".join(quote_identifier(part) for part in parts)


def quote_string(value: str) -> str:
    """A single-quoted SQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _datetime_text(value: dt.datetime) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _json_default(value: object) -> Any:
    if isinstance(value, dt.datetime):
        # isoformat is several times faster than strftime; this runs per value
        if value.tzinfo is not None and value.utcoffset():
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    raise TypeError(f"cannot send {type(value).__name__} to ClickHouse")


_ENCODER = json.JSONEncoder(default=_json_default, ensure_ascii=False, separators=(",", ":"))


def json_each_row(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as JSONEachRow text: datetimes as UTC text, UUIDs and decimals as text."""
    return "\n".join(map(_ENCODER.encode, rows))


def insert_settings(
    *, dedup_token: str | None, settings: InsertSettings | None
) -> dict[str, str | int]:
    """An insert's query settings: ``settings`` (plain names, integer values), and the
    deduplication token as ``insert_deduplication_token`` when there is one."""
    wanted: dict[str, str | int] = {}
    for name, value in (settings or {}).items():
        if not _IDENTIFIER.match(name) or name == "insert_deduplication_token":
            raise ValueError(f"not an insert setting name: {name!r}")
        wanted[name] = int(value)
    if dedup_token is not None:
        if not dedup_token:
            raise ValueError("dedup_token must not be empty")
        wanted["insert_deduplication_token"] = dedup_token
    return wanted


def insert_statement(
    table: str,
    *,
    dedup_token: str | None,
    fmt: str | None = "JSONEachRow",
    settings: InsertSettings | None = None,
) -> str:
    """`INSERT INTO db.t [SETTINGS insert_deduplication_token=..., <name> = <int>, ...]
    FORMAT JSONEachRow` (the token first; see `insert_settings`).

    `fmt=None` leaves the FORMAT clause out (for APIs that take the format apart).
    """
    wanted = insert_settings(dedup_token=dedup_token, settings=settings)
    token = wanted.pop("insert_deduplication_token", None)
    pairs = [] if token is None else [f"insert_deduplication_token = {quote_string(str(token))}"]
    pairs += [f"{name} = {value}" for name, value in wanted.items()]
    clause = f" SETTINGS {', '.join(pairs)}" if pairs else ""
    statement = f"INSERT INTO {quote_table(table)}{clause}"
    return f"{statement} FORMAT {fmt}" if fmt else statement


def _escape_param_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _param_literal(value: Any) -> str:
    """A value inside an array/tuple/map parameter: written as a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, str | dt.datetime | dt.date | uuid.UUID):
        return quote_string(format_param(value))
    return format_param(value)


def format_param(value: Any) -> str:
    """A query parameter value in the text form ClickHouse parses for `{x:Type}`.

    This is the form of HTTP `param_x=` values and of chDB's `params`: strings
    in escaped form (backslash, tab, newline escaped), arrays and tuples as
    literals, NULL as `\\N`.
    """
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        return _escape_param_text(value)
    if isinstance(value, dt.datetime):
        return _datetime_text(value)
    if isinstance(value, dt.date | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        inner = ", ".join(_param_literal(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_param_literal(k)}: {_param_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(f"cannot pass {type(value).__name__} as a query parameter")
