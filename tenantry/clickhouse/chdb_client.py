"""`ClickHouseClient` on chDB: the ClickHouse engine inside this process.

This is the embedded default for local runs and the engine every test runs the
project's SQL on, since no modern ClickHouse server can be installed on our
machines. It is the real engine (MergeTree, TTL, materialized views,
deduplication), not an imitation, with these limits (see RECIPES.md):

- one engine per process: the first data directory opened wins, and opening a
  second one raises "EmbeddedServer already initialized". Several clients on
  the *same* path share the engine.
- one process per data directory (chDB holds a lock file in it), so parallel
  test workers need one directory each.
- access control (CREATE USER / ROLE / ROW POLICY / QUOTA) is refused; every
  query runs as `default`.

Results are read as JSONCompactEachRowWithNamesAndTypes and converted by the
column types, so the values match what clickhouse-connect returns (see the
conventions in `tenantry.clickhouse.client`). Arrow output would be faster but
turns `DateTime` into plain integers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import threading
import uuid
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import chdb

from tenantry.clickhouse.client import (
    ClickHouseError,
    InsertSettings,
    Params,
    Row,
    check_statement,
    failed_parts,
    format_param,
    insert_statement,
    json_each_row,
)

# Connection-level settings so JSON output keeps numbers as numbers and
# decimals exact; applied once per connection (each connection has its own).
_CONNECTION_SETTINGS = (
    "output_format_json_quote_64bit_integers = 0",
    "output_format_json_quote_decimals = 1",
    "output_format_json_quote_denormals = 1",
)
_RESULT_FORMAT = "JSONCompactEachRowWithNamesAndTypes"
_WRAPPER = re.compile(r"^(Nullable|LowCardinality|SimpleAggregateFunction)\((.*)\)$")
_DATETIME = re.compile(r"^DateTime(?:64)?(?:\((.*)\))?$")
_ZONE = re.compile(r"'([^']+)'")


def _strip_wrappers(type_name: str) -> str:
    while match := _WRAPPER.match(type_name):
        inner = match.group(2)
        if match.group(1) == "SimpleAggregateFunction":
            inner = inner.split(",", 1)[1].strip()
        type_name = inner
    return type_name


def _datetime_converter(zone: dt.tzinfo) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        parsed = dt.datetime.fromisoformat(str(value))
        return parsed.replace(tzinfo=zone)

    return convert


def _identity(value: Any) -> Any:
    return value


def converter(type_name: str, server_zone: dt.tzinfo) -> Callable[[Any], Any]:
    """A function turning one JSON cell of ClickHouse type `type_name` into Python."""
    base = _strip_wrappers(type_name)
    convert: Callable[[Any], Any]
    if base.startswith(("Int", "UInt")):
        convert = int
    elif base.startswith(("Float", "BFloat")):
        convert = float
    elif base == "Bool":
        convert = bool
    elif base.startswith("Decimal"):
        convert = decimal.Decimal
    elif base == "UUID":
        convert = uuid.UUID
    elif base in ("Date", "Date32"):
        convert = dt.date.fromisoformat
    elif match := _DATETIME.match(base):
        zone_match = _ZONE.search(match.group(1) or "")
        zone = zoneinfo.ZoneInfo(zone_match.group(1)) if zone_match else server_zone
        convert = _datetime_converter(zone)
    elif base.startswith("Array(") and base.endswith(")"):
        item = converter(base[len("Array(") : -1], server_zone)

        def convert(value: Any) -> Any:
            return [None if v is None else item(v) for v in value]

    else:
        convert = _identity
    return convert


def connect(path: str) -> Any:
    """A new chDB connection on `path` (chdb ships no annotations for it)."""
    return chdb.connect(path)  # type: ignore[no-untyped-call, unused-ignore]


class ChdbClient:
    """chDB session at a data directory, behind the `ClickHouseClient` calls.

    Thread-safe: calls are serialised on one connection (chDB serialises work
    on a connection anyway). `server_zone` is the engine's `timezone()`, the
    zone of `DateTime` columns declared without one.
    """

    def __init__(self, path: str | Path) -> None:
        data = Path(path).resolve()
        data.mkdir(parents=True, exist_ok=True)
        self.path = str(data)
        try:
            self._conn: Any = connect(self.path)
        except Exception as exc:
            raise ClickHouseError.from_message(str(exc)) from exc
        self._lock = threading.Lock()
        self._closed = False
        for setting in _CONNECTION_SETTINGS:
            self._run(f"SET {setting}", "TabSeparated", None)
        zone_name = self._run("SELECT timezone()", "TabSeparatedRaw", None).decode().strip()
        self.server_zone: dt.tzinfo = zoneinfo.ZoneInfo(zone_name)

    def _run(self, sql: str, fmt: str, params: Params | None) -> bytes:
        engine_params = {k: format_param(v) for k, v in (params or {}).items()}
        with self._lock:
            if self._closed:
                raise ClickHouseError("client is closed")
            try:
                result = self._conn.query(sql, fmt, params=engine_params)
            except Exception as exc:
                raise ClickHouseError.from_message(str(exc)) from exc
        return bytes(result.bytes())

    def command(self, sql: str, params: Params | None = None) -> None:
        self._run(sql, "TabSeparated", params)

    def check_table(self, table: str) -> list[str]:
        return failed_parts(self._run(check_statement(table), "TabSeparated", None).decode())

    def query(self, sql: str, params: Params | None = None) -> list[Row]:
        """Rows of `sql`, which must not carry its own FORMAT clause."""
        lines = self._run(sql, _RESULT_FORMAT, params).splitlines()
        if len(lines) < 2:
            return []
        names: list[str] = json.loads(lines[0])
        types: list[str] = json.loads(lines[1])
        converters = [converter(t, self.server_zone) for t in types]
        rows: list[Row] = []
        for line in lines[2:]:
            cells = json.loads(line)
            rows.append(
                {
                    name: None if cell is None else conv(cell)
                    for name, conv, cell in zip(names, converters, cells, strict=True)
                }
            )
        return rows

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, dedup_token: str | None = None
    ) -> None:
        if not rows:
            return
        statement = insert_statement(table, dedup_token=dedup_token)
        self._run(f"{statement}\n{json_each_row(rows)}", "TabSeparated", None)

    def insert_json(
        self,
        table: str,
        data: bytes,
        *,
        dedup_token: str | None = None,
        settings: InsertSettings | None = None,
    ) -> None:
        if not data.strip():
            return
        statement = insert_statement(table, dedup_token=dedup_token, settings=settings)
        self._run_bytes(statement.encode() + b"\n" + data)

    def insert_rowbinary(
        self,
        table: str,
        chunks: Sequence[bytes],
        *,
        dedup_token: str | None = None,
        settings: InsertSettings | None = None,
    ) -> None:
        """One streaming insert fed chunk by chunk (no joined copy in Python).

        Binary data cannot go inline in the query text as `insert_json` does:
        chDB splits a query's text at a blank line (two newline bytes), which
        binary rows contain, and silently drops what follows.
        """
        if not any(chunks):
            return
        statement = insert_statement(table, dedup_token=dedup_token, fmt=None, settings=settings)
        with self._lock:
            if self._closed:
                raise ClickHouseError("client is closed")
            try:
                with self._conn.send_insert(statement, "RowBinary") as inserter:
                    for chunk in chunks:
                        if chunk:
                            inserter.append(chunk)
                    inserter.finish()
            except Exception as exc:
                raise ClickHouseError.from_message(str(exc)) from exc

    def _run_bytes(self, sql: bytes) -> None:
        with self._lock:
            if self._closed:
                raise ClickHouseError("client is closed")
            try:
                self._conn.query(sql, "TabSeparated")
            except Exception as exc:
                raise ClickHouseError.from_message(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
