"""Both adapters against the real engine: values, parameters, errors, async."""

from __future__ import annotations

import datetime as dt
import decimal
import urllib.parse
import uuid
from pathlib import Path

import pytest

from tenantry.clickhouse import open_client
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import AsyncClickHouse, ClickHouseClient, ClickHouseError
from tenantry.clickhouse.http_client import HttpClickHouseClient
from tenantry_dev.loopback_server import LoopbackServer
from tests.integration.clickhouse.conftest import WRITER_PASSWORD

TYPED = (
    "SELECT {n:UInt32} + 1 AS n, {s:String} AS s, {tags:Array(String)} AS tags, "
    "toUInt64(18446744073709551615) AS big, toInt8(-3) AS small, 0.25 AS f, "
    "toDateTime64('2026-01-02 03:04:05.678', 3, 'UTC') AS ts, "
    "toDateTime('2026-01-02 03:04:05', 'UTC') AS dt, toDate('2026-01-02') AS d, "
    "toUUID('30bee2ad-8c60-4f57-976d-3475477da695') AS id, toDecimal64(1.25, 2) AS dec, "
    "CAST(NULL AS Nullable(String)) AS missing, true AS yes"
)
PARAMS = {"n": 41, "s": "quote ' backslash \\ tab \t newline \n end", "tags": ["a'b", "c"]}
EXPECTED = {
    "n": 42,
    "s": PARAMS["s"],
    "tags": ["a'b", "c"],
    "big": 2**64 - 1,
    "small": -3,
    "f": 0.25,
    "ts": dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
    "dt": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    "d": dt.date(2026, 1, 2),
    "id": uuid.UUID("30bee2ad-8c60-4f57-976d-3475477da695"),
    "dec": decimal.Decimal("1.25"),
    "missing": None,
    "yes": True,
}


def test_values_and_parameters_come_back_typed(client: ClickHouseClient) -> None:
    rows = client.query(TYPED, PARAMS)

    assert rows == [EXPECTED]
    assert list(rows[0]) == list(EXPECTED)  # column order kept
    assert rows[0]["ts"].utcoffset() == dt.timedelta(0)


def test_both_adapters_return_the_same_rows(
    chdb_client: ChdbClient, http_client: HttpClickHouseClient
) -> None:
    sql = (
        "SELECT number AS n, toString(number) AS s, toStartOfHour(toDateTime(number * 1000, "
        "'UTC')) AS hour FROM numbers({count:UInt32}) ORDER BY n"
    )
    assert chdb_client.query(sql, {"count": 50}) == http_client.query(sql, {"count": 50})


def test_query_with_no_rows(client: ClickHouseClient) -> None:
    assert client.query("SELECT number FROM numbers(0)") == []


@pytest.mark.parametrize(
    ("sql", "code", "name"),
    [
        ("SELECT * FROM no_such_db.events", 81, "UNKNOWN_DATABASE"),
        ("SELECT nope()", 46, "UNKNOWN_FUNCTION"),
        ("SELEC 1", 62, "SYNTAX_ERROR"),
    ],
)
def test_engine_errors_keep_their_code(
    client: ClickHouseClient, sql: str, code: int, name: str
) -> None:
    with pytest.raises(ClickHouseError) as caught:
        client.query(sql)
    assert caught.value.code == code
    assert caught.value.name == name


def test_command_runs_ddl(client: ClickHouseClient, database: str) -> None:
    client.command(f"CREATE DATABASE `{database}`")
    client.command(f"CREATE TABLE `{database}`.kv (k String, v UInt8) ENGINE = Memory")
    client.insert(f"{database}.kv", [{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    total = client.query(f"SELECT sum(v) AS s FROM `{database}`.kv")  # noqa: S608 - generated test database name
    assert total == [{"s": 3}]


def test_insert_refuses_odd_table_names(client: ClickHouseClient) -> None:
    with pytest.raises(ValueError, match="identifier"):
        client.insert("x; DROP TABLE y", [{"a": 1}])


async def test_async_facade_runs_in_a_thread(client: ClickHouseClient) -> None:
    facade = AsyncClickHouse(client)
    rows = await facade.query("SELECT {x:String} AS x", {"x": "async"})
    assert rows == [{"x": "async"}]


def test_chdb_one_engine_per_process(chdb_client: ChdbClient, tmp_path: Path) -> None:
    """chDB's rule made visible: a second data directory in one process fails."""
    with pytest.raises(ClickHouseError, match="already initialized"):
        ChdbClient(tmp_path / "other")
    same = ChdbClient(chdb_client.path)  # the same directory shares the engine
    try:
        assert same.query("SELECT 1 AS one") == [{"one": 1}]
    finally:
        same.close()


def test_open_client_picks_the_adapter(
    chdb_client: ChdbClient, loopback: LoopbackServer, database: str
) -> None:
    chdb_client.command(f"CREATE DATABASE `{database}`")
    local = open_client(f"chdb://{chdb_client.path}")
    remote = open_client(
        f"http://writer:{urllib.parse.quote(WRITER_PASSWORD)}@{loopback.host}:{loopback.port}"
        f"/{database}"
    )
    try:
        assert isinstance(local, ChdbClient)
        assert isinstance(remote, HttpClickHouseClient)
        assert remote.query("SELECT currentDatabase() AS db") == [{"db": database}]
        assert local.query("SELECT 1 AS one") == [{"one": 1}]
    finally:
        local.close()
        remote.close()
    with pytest.raises(ValueError, match="scheme"):
        open_client("tcp://localhost:9000")
    with pytest.raises(ValueError, match="absolute"):
        open_client("chdb://relative")


def test_check_table_names_each_corrupt_part_and_nothing_else(
    client: ClickHouseClient, chdb_client: ChdbClient, database: str
) -> None:
    table = f"`{database}`.`checked`"
    chdb_client.command(f"CREATE DATABASE `{database}`")
    chdb_client.command(f"CREATE TABLE {table} (n UInt64, s String) ENGINE = MergeTree ORDER BY n")
    chdb_client.command("SYSTEM STOP MERGES " + table)
    for start in (0, 10_000):  # two parts
        chdb_client.command(
            f"INSERT INTO {table} SELECT number, toString(number) "  # noqa: S608
            f"FROM numbers({start}, 10000)"
        )
    assert client.check_table(table) == []
    parts = chdb_client.query(
        "SELECT name, path FROM system.parts WHERE active AND database = {db:String} ORDER BY name",
        {"db": database},
    )
    assert len(parts) == 2
    data = Path(parts[1]["path"]) / "data.bin"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size: only the content's hash can tell
    data.write_bytes(bytes(raw))
    [broken] = client.check_table(table)
    assert broken.startswith(f"{parts[1]['name']}: ")
    assert "Checksum" in broken or "checksum" in broken
