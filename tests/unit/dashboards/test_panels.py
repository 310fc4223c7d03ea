"""Pure panel checks: statements, parameters, messages, view names.

The SQL safety check (`sql_safety.check_sql`) has its own table: test_panel_sql_safety.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.api.dashboard import TimeRange, Variable
from tenantry.clickhouse.client import ClickHouseError
from tenantry.dashboards import panels, sql_safety

NOW = dt.datetime(2026, 3, 10, 12, 0, 0, tzinfo=dt.UTC)


# -- statements ---------------------------------------------------------------------------


def test_single_statement_strips_a_trailing_semicolon_and_comment() -> None:
    assert panels.single_statement("  SELECT 1 ;  \n") == "SELECT 1"
    assert panels.single_statement("SELECT ';' AS s -- ; comment") == "SELECT ';' AS s"
    assert panels.single_statement("SELECT 1 /* ; */ + 2; -- end") == "SELECT 1 /* ; */ + 2"


@pytest.mark.parametrize(
    "sql", ["SELECT 1; DROP TABLE events", "SELECT 1;;", "SELECT 'a'; SELECT 2"]
)
def test_single_statement_refuses_a_second_statement(sql: str) -> None:
    with pytest.raises(panels.PanelError, match="more than one statement"):
        panels.single_statement(sql)


def test_single_statement_only_trims_format_is_judged_on_the_tree() -> None:
    """FORMAT used to be refused here by a regular expression on the text, which also
    refused `ORDER BY format DESC`; `check_sql` now judges it on the parse tree."""
    assert panels.single_statement("SELECT 1 FORMAT JSON;") == "SELECT 1 FORMAT JSON"
    with pytest.raises(panels.PanelError, match="FORMAT is not allowed"):
        sql_safety.check_sql("SELECT 1 FORMAT JSON", database="t_acme")


def test_format_as_a_name_or_function_is_fine() -> None:
    sql = "SELECT format('{}', event) AS format FROM events -- FORMAT CSV"
    assert panels.single_statement(sql) == "SELECT format('{}', event) AS format FROM events"
    sql_safety.check_sql(sql, database="t_acme")
    sql_safety.check_sql(
        "SELECT event AS format FROM events ORDER BY format DESC", database="t_acme"
    )


def test_single_statement_refuses_empty_sql() -> None:
    with pytest.raises(panels.PanelError, match="empty"):
        panels.single_statement(" ; ")


def test_query_parameters_outside_strings_and_comments() -> None:
    sql = (
        "SELECT '{not:String}' AS s -- {nor:UInt8}\n"
        "FROM events WHERE timestamp >= {from:DateTime} AND timestamp < { to : DateTime }\n"
        "AND JSONExtractString(properties, 'country') = {country:String}"
    )
    assert panels.query_parameters(sql) == {
        "from": "DateTime",
        "to": "DateTime",
        "country": "String",
    }


def test_query_parameter_with_two_types_is_refused() -> None:
    with pytest.raises(panels.PanelError, match="two types"):
        panels.query_parameters("SELECT {n:UInt8}, {n:String}")


# -- parameter values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-15m", NOW - dt.timedelta(minutes=15)),
        ("now-7d", NOW - dt.timedelta(days=7)),
        ("now-2w", NOW - dt.timedelta(weeks=2)),
        ("2026-01-02T03:04:05Z", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        ("2026-01-02T03:04:05+02:00", dt.datetime(2026, 1, 2, 1, 4, 5, tzinfo=dt.UTC)),
    ],
)
def test_resolve_time(text: str, expected: dt.datetime) -> None:
    assert panels.resolve_time(text, NOW) == expected


def test_resolve_time_refuses_garbage() -> None:
    with pytest.raises(panels.PanelError, match="RFC 3339"):
        panels.resolve_time("yesterday", NOW)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: OverflowError before the fix
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC: likewise
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",  # what a ClickHouse DateTime cannot hold
        "2106-02-07T06:28:16Z",
        "now-99999w",
    ],
)
def test_resolve_time_refuses_what_datetime_cannot_hold(text: str) -> None:
    with pytest.raises(panels.PanelError, match="out of range"):
        panels.resolve_time(text, NOW)


def test_relative_time_from_a_now_near_the_edge_is_refused_not_raised() -> None:
    with pytest.raises(panels.PanelError, match="out of range"):
        panels.resolve_time("now-1w", dt.datetime(1, 1, 3, tzinfo=dt.UTC))


@given(st.datetimes(timezones=st.timezones()), st.datetimes(timezones=st.just(dt.UTC)))
def test_resolve_time_gives_a_time_or_a_panel_error(when: dt.datetime, now: dt.datetime) -> None:
    """No calendar value makes it raise anything but PanelError (the handler's crash)."""
    for text in (when.isoformat(), f"now-{when.microsecond % 99999}d"):
        try:
            resolved = panels.resolve_time(text, now)
        except panels.PanelError:
            continue
        assert resolved.tzinfo is not None


def test_parameter_values_from_variables_and_time_range() -> None:
    variables = [Variable(name="country", default="DE", options=["DE", "FR"], type="custom")]
    values = panels.parameter_values(
        {"country": "String", "from": "DateTime", "to": "DateTime"},
        variables=variables,
        time_range=TimeRange.model_validate({"from": "now-1d", "to": "now"}),
        now=NOW,
    )
    assert values == {
        "country": "DE",
        "from": "2026-03-09 12:00:00",
        "to": "2026-03-10 12:00:00",
    }


def test_a_variable_named_from_wins_over_the_time_range() -> None:
    values = panels.parameter_values(
        {"from": "String"},
        variables=[Variable(name="from", default="x")],
        time_range=TimeRange(),
        now=NOW,
    )
    assert values == {"from": "x"}


def test_unknown_variable_is_named_in_the_error() -> None:
    with pytest.raises(
        panels.PanelError, match=r"unknown variable \{plan:String\}.*spec.variables"
    ):
        panels.parameter_values({"plan": "String"}, variables=[], time_range=TimeRange(), now=NOW)


# -- messages -------------------------------------------------------------------------------


def test_friendly_syntax_error_points_into_the_panel_sql() -> None:
    sql = "SELECT count()\nFROM events\nWHERE event = = 'x'"
    prefix = "EXPLAIN AST "
    position = len(prefix) + sql.index("= 'x'") + 1  # ClickHouse counts from 1
    error = ClickHouseError.from_message(
        f"Code: 62. DB::Exception: Syntax error: failed at position {position} (=): = 'x'. "
        "Expected one of: token, expression. (SYNTAX_ERROR)"
    )
    message = panels.friendly_error(error, sql=sql, prefix=prefix)
    assert message.startswith("syntax error at line 3, column 15 near '='")
    assert "expected one of: token, expression" in message


def test_friendly_syntax_error_names_an_unclosed_parenthesis() -> None:
    sql = "SELECT count(\nFROM events WHERE"
    error = ClickHouseError.from_message(
        "Code: 62. DB::Exception: Syntax error: failed at position 32 (events) (line 2, col 6): "
        "events WHERE. Unmatched parentheses: '(' at position 25 (line 1, col 25) is never "
        "closed. (SYNTAX_ERROR)"
    )
    assert panels.friendly_error(error, sql=sql, prefix="EXPLAIN AST ") == (
        "syntax error at line 2, column 6 near 'events': '(' at line 1, column 13 is never closed"
    )


def test_friendly_error_trims_engine_noise() -> None:
    error = ClickHouseError.from_message(
        "Code: 47. DB::Exception: Unknown expression identifier `nope`. "
        "In scope SELECT nope FROM events. (UNKNOWN_IDENTIFIER)"
    )
    assert panels.friendly_error(error, sql="SELECT nope FROM events") == (
        "unknown column: Unknown expression identifier `nope`"
    )


# -- view names -------------------------------------------------------------------------------


def test_view_names() -> None:
    assert panels.view_name("acme-traffic", "views_over_time") == "mv_acme_traffic_views_over_time"
    assert panels.dashboard_prefix("web.v2") == "mv_web_v2_"
    long = panels.view_name("d" * 253, "p" * 63)
    assert len(long) <= 180
    assert long.startswith("mv_ddd")
    assert long != panels.view_name("d" * 253, "q" * 63)


def test_view_comment_round_trip_and_foreign_comments() -> None:
    owner = panels.ViewOwner("acme-traffic", "views", panels.sql_hash("SELECT 1"))
    assert panels.parse_view_comment(panels.view_comment(owner)) == owner
    assert panels.parse_view_comment("") is None
    assert panels.parse_view_comment("made by hand") is None
    assert panels.parse_view_comment('{"dashboard": "x"}') is None


def test_sql_hash_ignores_whitespace_only() -> None:
    assert panels.sql_hash("SELECT  1\n FROM events") == panels.sql_hash("SELECT 1 FROM events")
    assert panels.sql_hash("SELECT 1") != panels.sql_hash("SELECT 2")
