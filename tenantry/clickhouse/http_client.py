"""`ClickHouseClient` over HTTP with clickhouse-connect: what deployments use.

The operator, the ingestion writer and the control plane reach a tenant's
ClickHouse through its Service with this adapter. Choices made here:

- no HTTP session (`autogenerate_session_id=False`): every call is
  independent, so one client can be shared by threads and by the async facade,
  and a call can land on any replica behind the Service.
- queries read clickhouse-connect's Native format (binary, typed); query
  parameters travel as `param_<name>` and are bound by the server.
- inserts send JSONEachRow text (`raw_insert`), exactly like the chDB adapter:
  the same dict is parsed by the same engine code whichever adapter carries
  it; `insert_rowbinary` sends RowBinary the same way. The dedup token travels
  as the `insert_deduplication_token` setting, an insert's other settings beside it.
- naive datetimes in results (DateTime columns declared without a zone) get the
  server's zone attached, matching the chDB adapter.

In tests this adapter talks to `tenantry_dev.loopback_server`, a
ClickHouse-HTTP endpoint over chDB, because no ClickHouse server can be
installed on our machines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import Error as DriverError

from tenantry.clickhouse.client import (
    ClickHouseError,
    InsertSettings,
    Params,
    Row,
    check_statement,
    failed_parts,
    insert_settings,
    json_each_row,
    quote_table,
)


def _wrap(exc: DriverError) -> ClickHouseError:
    error = ClickHouseError.from_message(str(exc))
    if exc.code is not None:
        error.code = exc.code
    if exc.name:
        error.name = exc.name
    return error


class HttpClickHouseClient:
    """clickhouse-connect HTTP client behind the `ClickHouseClient` calls."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 8123,
        username: str = "default",
        password: str = "",
        database: str | None = None,
        secure: bool = False,
        connect_timeout: int = 10,
        send_receive_timeout: int = 300,
    ) -> None:
        try:
            self._client = clickhouse_connect.get_client(
                host=host,
                port=port,
                username=username,
                password=password,
                database=database or "",
                interface="https" if secure else "http",
                connect_timeout=connect_timeout,
                send_receive_timeout=send_receive_timeout,
                autogenerate_session_id=False,
            )
        except DriverError as exc:
            raise _wrap(exc) from exc
        self.server_zone: dt.tzinfo = self._client.server_tz

    @property
    def server_version(self) -> str:
        return str(self._client.server_version)

    def command(self, sql: str, params: Params | None = None) -> None:
        try:
            self._client.command(sql, parameters=dict(params) if params else None)
        except DriverError as exc:
            raise _wrap(exc) from exc

    def query(self, sql: str, params: Params | None = None) -> list[Row]:
        try:
            result = self._client.query(sql, parameters=dict(params) if params else None)
        except DriverError as exc:
            raise _wrap(exc) from exc
        names = list(result.column_names)
        return [
            {name: self._normalise(value) for name, value in zip(names, row, strict=True)}
            for row in result.result_rows
        ]

    def check_table(self, table: str) -> list[str]:
        try:
            raw = self._client.raw_query(check_statement(table), fmt="TabSeparated")
        except DriverError as exc:
            raise _wrap(exc) from exc
        return failed_parts(raw.decode())

    def _normalise(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=self.server_zone)
        if isinstance(value, list):
            return [self._normalise(item) for item in value]
        return value

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]], *, dedup_token: str | None = None
    ) -> None:
        if not rows:
            return
        self._raw_insert(table, json_each_row(rows).encode(), dedup_token)

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
        self._raw_insert(table, data, dedup_token, settings=settings)

    def insert_rowbinary(
        self,
        table: str,
        chunks: Sequence[bytes],
        *,
        dedup_token: str | None = None,
        settings: InsertSettings | None = None,
    ) -> None:
        data = b"".join(chunks)
        if data:
            self._raw_insert(table, data, dedup_token, fmt="RowBinary", settings=settings)

    def _raw_insert(
        self,
        table: str,
        data: bytes,
        dedup_token: str | None,
        *,
        fmt: str = "JSONEachRow",
        settings: InsertSettings | None = None,
    ) -> None:
        wanted = insert_settings(dedup_token=dedup_token, settings=settings)
        try:
            self._client.raw_insert(quote_table(table), insert_block=data, fmt=fmt, settings=wanted)
        except DriverError as exc:
            raise _wrap(exc) from exc

    def close(self) -> None:
        self._client.close()
