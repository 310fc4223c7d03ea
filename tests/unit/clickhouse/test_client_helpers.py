"""Quoting, parameter text, JSONEachRow rows, error parsing and chDB type conversion."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
import zoneinfo

import pytest

from tenantry.clickhouse import client
from tenantry.clickhouse.chdb_client import converter

UTC = zoneinfo.ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\\N"),
        (True, "1"),
        (42, "42"),
        (1.5, "1.5"),
        ("tab\there", "tab\\there"),
        ("back\\slash\nline", "back\\\\slash\\nline"),
        ("it's", "it's"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.UTC), "2026-01-02 03:04:05.006000"),
        (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02 03:04:05.000000"),
        (
            dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "2026-01-02 03:04:05.000000",
        ),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (["a'b", 1, None], "['a\\'b', 1, NULL]"),
        (("x", 2), "('x', 2)"),
        ({"k": 1}, "{'k': 1}"),
    ],
)
def test_format_param(value: object, text: str) -> None:
    assert client.format_param(value) == text


def test_format_param_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        client.format_param(object())


def test_json_each_row_serialises_python_values() -> None:
    event_id = uuid.UUID("30bee2ad-8c60-4f57-976d-3475477da695")
    text = client.json_each_row(
        [
            {
                "id": event_id,
                "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                "price": decimal.Decimal("1.10"),
            },
            {"id": event_id, "at": "2026-01-02 00:00:00", "price": 2},
        ]
    )
    first, second = (json.loads(line) for line in text.splitlines())
    assert first == {"id": str(event_id), "at": "2026-01-02 00:00:00", "price": "1.10"}
    assert second["at"] == "2026-01-02 00:00:00"


def test_json_each_row_writes_datetimes_as_utc() -> None:
    paris = dt.datetime(2026, 1, 2, 4, 0, 0, 5000, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    naive = dt.datetime(2026, 1, 2, 3, 0, 0)
    lines = client.json_each_row([{"a": paris}, {"a": naive}]).splitlines()
    assert [json.loads(line)["a"] for line in lines] == [
        "2026-01-02 03:00:00.005000",
        "2026-01-02 03:00:00",
    ]


def test_insert_statement_with_and_without_token() -> None:
    assert client.insert_statement("db.t", dedup_token=None) == (
        "INSERT INTO `db`.`t` FORMAT JSONEachRow"
    )
    assert client.insert_statement("t", dedup_token="b'1") == (
        "INSERT INTO `t` SETTINGS insert_deduplication_token = 'b\\'1' FORMAT JSONEachRow"
    )
    with pytest.raises(ValueError, match="empty"):
        client.insert_statement("t", dedup_token="")


def test_insert_statement_with_settings() -> None:
    settings = {"optimize_on_insert": 0, "max_insert_threads": 2}
    assert client.insert_statement("t", dedup_token="x", fmt=None, settings=settings) == (
        "INSERT INTO `t` SETTINGS insert_deduplication_token = 'x', "
        "optimize_on_insert = 0, max_insert_threads = 2"
    )
    assert client.insert_statement("t", dedup_token=None, settings={"a": 1}) == (
        "INSERT INTO `t` SETTINGS a = 1 FORMAT JSONEachRow"
    )
    assert client.insert_settings(dedup_token="x", settings={"a": 1}) == {
        "a": 1,
        "insert_deduplication_token": "x",
    }


@pytest.mark.parametrize("bad", ["a b", "a=1", "", "insert_deduplication_token"])
def test_insert_settings_refuse_odd_names(bad: str) -> None:
    with pytest.raises(ValueError, match="insert setting name"):
        client.insert_statement("t", dedup_token=None, settings={bad: 1})


@pytest.mark.parametrize("bad", ["a.b.c", "a-b", "", "1a", "a`b", "a b"])
def test_quote_table_refuses_odd_names(bad: str) -> None:
    with pytest.raises(ValueError, match=r"identifier|name"):
        client.quote_table(bad)


def test_error_from_clickhouse_message() -> None:
    error = client.ClickHouseError.from_message(
        "Code: 60. DB::Exception: Unknown table expression identifier 'x'. (UNKNOWN_TABLE)"
    )
    assert (error.code, error.name) == (60, "UNKNOWN_TABLE")
    assert client.ClickHouseError.from_message("something odd").code == 0


@pytest.mark.parametrize(
    ("type_name", "cell", "value"),
    [
        ("UInt64", 18446744073709551615, 2**64 - 1),
        ("Int128", "-5", -5),
        ("Float32", 0.5, 0.5),
        ("Bool", True, True),
        ("Decimal(18, 2)", "1.25", decimal.Decimal("1.25")),
        (
            "UUID",
            "30bee2ad-8c60-4f57-976d-3475477da695",
            uuid.UUID("30bee2ad-8c60-4f57-976d-3475477da695"),
        ),
        ("Date", "2026-01-02", dt.date(2026, 1, 2)),
        ("DateTime", "2026-01-02 03:04:05", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            "DateTime64(3, 'Europe/Paris')",
            "2026-01-02 03:04:05.678",
            dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        ),
        ("LowCardinality(Nullable(String))", "x", "x"),
        ("Array(Nullable(UInt8))", [1, None], [1, None]),
        ("SimpleAggregateFunction(sum, UInt64)", 3, 3),
        ("Map(String, UInt8)", {"a": 1}, {"a": 1}),
    ],
)
def test_chdb_cell_conversion(type_name: str, cell: object, value: object) -> None:
    converted = converter(type_name, UTC)(cell)
    assert converted == value
    assert type(converted) is type(value)


def test_failed_parts_keeps_only_the_parts_that_fail() -> None:
    from tenantry.clickhouse.client import failed_parts

    answer = "all_1_1_0\t1\t\nall_2_2_0\t0\tCode: 40. Checksum mismatch for data.bin\n"
    assert failed_parts(answer) == ["all_2_2_0: Code: 40. Checksum mismatch for data.bin"]
    assert failed_parts("all_1_1_0\t1\t\n") == []
    assert failed_parts("") == []
    assert failed_parts("all_3_3_0\t0\t\n") == ["all_3_3_0: check failed"]
