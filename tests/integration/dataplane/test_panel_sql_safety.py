"""Panel SQL safety on the real engine: the tree check and ClickHouse read SQL alike.

`sql_safety.check_sql` judges sqlglot's parse of the panel's text, so the question is
whether sqlglot and the engine read the same query. Another tenant's database holds a
canary; every case here is run on the engine (chDB) as well as checked:

- SQL the check refuses really reads the canary when the engine runs it (the
  threat is real, not a syntax error);
- SQL the check passes, built to hide a read from a reader that lexes differently
  (comments, nested comments, heredocs, escapes, odd line ends), never reads it;
- where the old check (which judged the text of `EXPLAIN AST` with the defaults
  bound, removed with this change) and the tree check disagree, the engine shows
  which is right.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tenantry_operator.dataplane import dashboards, schema_step
from tenantry_operator.model import TenantModel

from tenantry import clickhouse
from tenantry.api.dashboard import DashboardSpec
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseClient
from tenantry.dashboards import panels, sql_safety
from tests.integration.dataplane.conftest import tenant_client

SECRET = "s3cr3t-canary"


@dataclass(frozen=True)
class Engine:
    """A tenant database (the client's current one) and another tenant's, with a canary."""

    client: ClickHouseClient
    database: str
    other: str

    def run(self, sql: str, params: dict[str, str] | None = None) -> str:
        return repr(self.client.query(sql.replace("{other}", self.other), params))

    def check(self, sql: str) -> None:
        sql_safety.check_sql(sql.replace("{other}", self.other), database=self.database)


@pytest.fixture
def engine(chdb_client: ChdbClient, chdb_path: Path) -> Iterator[Engine]:
    suffix = uuid.uuid4().hex[:10]
    database, other = f"t_sql_{suffix}", f"t_other_{suffix}"
    chdb_client.command(f"CREATE DATABASE {database}")
    chdb_client.command(f"CREATE DATABASE {other}")
    chdb_client.command(
        f"CREATE TABLE {database}.users (id UInt64, name String) ENGINE = MergeTree ORDER BY id"
    )
    chdb_client.command(
        f"CREATE TABLE {other}.users (id UInt64, secret String) ENGINE = MergeTree ORDER BY id"
    )
    chdb_client.command(f"INSERT INTO {other}.users VALUES (0, '{SECRET}')")  # noqa: S608 - test names
    chdb_client.command(f"CREATE TABLE {other}.ids (id UInt64) ENGINE = MergeTree ORDER BY id")
    chdb_client.command(f"INSERT INTO {other}.ids VALUES (0)")  # noqa: S608 - test names
    client = clickhouse.open_tenant_client(f"chdb://{chdb_path}", database=database)
    try:
        yield Engine(client, database, other)
    finally:
        client.close()
        for name in (database, other):
            chdb_client.command(f"DROP DATABASE IF EXISTS {name} SYNC")


LEAKS = [
    "SELECT secret FROM {other}.users",
    "SELECT secret FROM `{other}`.`users`",
    'SELECT secret FROM "{other}".users',
    "SELECT (SELECT any(secret) FROM {other}.users) AS s",
    "WITH s AS (SELECT * FROM {other}.users) SELECT secret FROM s",
    "SELECT * FROM (SELECT * FROM (SELECT secret FROM {other}.users))",
    "SELECT name FROM users UNION ALL SELECT secret FROM {other}.users",
    "SELECT secret FROM users AS u RIGHT JOIN {other}.users AS o ON u.id = o.id",
    "SELECT * FROM merge('{other}', '^users$')",
    # The engine nests block comments, and so does sqlglot; a reader that did not
    # would see one string literal here.
    "SELECT 1 /* /* */ , ' */ , (SELECT any(secret) FROM {other}.users) -- '",
    "SELECT $$ -- $$, (SELECT any(secret) FROM {other}.users)",
    "SELECT 'a\\'', (SELECT any(secret) FROM {other}.users)",
    "SELECT 1 # a MySQL comment\n, (SELECT any(secret) FROM {other}.users)",
    "SELECT arrayMap(x -> (SELECT any(secret) FROM {other}.users), [1]) AS a",
]


@pytest.mark.parametrize("sql", LEAKS)
def test_what_the_check_refuses_would_read_the_other_tenant(engine: Engine, sql: str) -> None:
    assert SECRET in engine.run(sql), "the engine reads the canary: a real threat"
    with pytest.raises(panels.PanelError):
        engine.check(sql)


def test_in_a_table_is_a_read_of_that_table(engine: Engine) -> None:
    """`x IN (db.t)` is a table to the engine unless `db` is a table of that SELECT."""
    for sql in (
        "SELECT count() AS n FROM numbers(1) WHERE number IN {other}.ids",
        "SELECT count() AS n FROM numbers(1) WHERE number IN ({other}.ids)",
    ):
        assert "'n': 1" in engine.run(sql)  # id 0 is in the other tenant's table
        with pytest.raises(panels.PanelError, match="is outside the tenant's database"):
            engine.check(sql)
    column = "SELECT count() AS n FROM numbers(2) AS o WHERE number IN (o.number)"
    assert "'n': 2" in engine.run(column)
    engine.check(column)


HIDDEN = [
    "SELECT 1 /* (SELECT any(secret) FROM {other}.users) */ AS x",
    "SELECT 1 /* /* */ (SELECT any(secret) FROM {other}.users) */ AS x",
    "SELECT 1 AS x -- , (SELECT any(secret) FROM {other}.users)",
    "SELECT 1 AS x # , (SELECT any(secret) FROM {other}.users)",
    "SELECT 1 AS x --\r, (SELECT any(secret) FROM {other}.users)",
    "SELECT 1 AS x --\x0b, (SELECT any(secret) FROM {other}.users)",
    "SELECT 1 AS x --\x0c, (SELECT any(secret) FROM {other}.users)",
    "SELECT 1 AS x --\x85, (SELECT any(secret) FROM {other}.users)",
    "SELECT 1 AS x --\u2028, (SELECT any(secret) FROM {other}.users)",
    "SELECT '{other}.users' AS s, $$ (SELECT secret FROM {other}.users) $$ AS t",
    "SELECT 'a\\' , (SELECT any(secret) FROM {other}.users), ' AS s",
    "SELECT `x /* (SELECT any(secret) FROM {other}.users) */` FROM (SELECT 1 AS `x /* "
    "(SELECT any(secret) FROM {other}.users) */`)",
]


@pytest.mark.parametrize("sql", HIDDEN)
def test_what_the_check_passes_reads_nothing_else(engine: Engine, sql: str) -> None:
    """Strings and comments built to read differently in a different lexer: the check
    passes them, and the engine indeed reads no other table."""
    engine.check(sql)
    assert SECRET not in engine.run(sql)


def test_valid_panels_pass_and_plan(engine: Engine) -> None:
    for sql in (
        "SELECT count() FROM users",
        "SELECT name, count() AS n FROM users GROUP BY name ORDER BY n DESC LIMIT 1 BY name",
        "WITH named AS (SELECT * FROM users WHERE name != '') SELECT count() FROM named",
        "SELECT number FROM numbers(3) UNION ALL SELECT id FROM users",
        "SELECT count() FROM users WHERE id IN (SELECT id FROM users)",
        "SELECT count() FROM users WHERE name = {name:String} AND id < {n:UInt64}",
    ):
        engine.check(sql)
        engine.run(f"EXPLAIN {sql}", {"name": "a", "n": "3"})


# -- where the old check and the tree check disagree ----------------------------------


def test_old_passed_a_name_parameter_whose_other_values_read_another_tenant(
    engine: Engine,
) -> None:
    """Old: judged `EXPLAIN AST` with the variable's *default* bound, saw the tenant's
    own table and passed; the control plane then ran the panel with any declared
    option. New: a `{db:Identifier}` parameter is refused. New is right:"""
    sql = "SELECT secret FROM {db:Identifier}.users"
    seen_by_old = engine.run(f"EXPLAIN AST {sql}", {"db": engine.database})
    assert f"TableIdentifier {engine.database}.users" in seen_by_old
    assert SECRET in engine.run(sql, {"db": engine.other})
    with pytest.raises(panels.PanelError, match=r"\{db:Identifier\} would let a value"):
        engine.check(sql)


def test_old_passed_a_probe_of_another_tenants_schema(engine: Engine) -> None:
    """Old: hasColumnInTable was in no deny list. New: refused. New is right:"""
    sql = "SELECT hasColumnInTable('{other}', 'users', 'secret') AS leak"
    assert "'leak': 1" in engine.run(sql)
    with pytest.raises(panels.PanelError, match=r"function hasColumnInTable\(\) reads outside"):
        engine.check(sql)


def test_old_refused_a_column_named_format(engine: Engine) -> None:
    """Old: a regular expression refused `FORMAT <word>` at the end of the text, so
    `ORDER BY format DESC` was "FORMAT is not allowed". New: passes. New is right:"""
    sql = "SELECT name AS format FROM users ORDER BY format DESC"
    engine.run(sql)  # the engine reads a column, not a FORMAT clause
    engine.check(sql)


def test_new_refuses_an_invisible_character_the_engine_skips(engine: Engine) -> None:
    """Old: passed (the engine reads U+200B as whitespace, so this is harmless). New:
    refused, deliberately: sqlglot reads it as a name, and the check must read what
    the engine reads; outside quotes and comments only ASCII is accepted."""
    sql = "SELECT 1 AS a \u200b, 2 AS b"
    assert engine.run(sql) == repr([{"a": 1, "b": 2}])
    with pytest.raises(panels.PanelError, match="outside ASCII"):
        engine.check(sql)


# -- in the operator: what sqlglot cannot read ----------------------------------------


@pytest.fixture
def tenant_scoped(
    chdb_client: ChdbClient, tenant: TenantModel, chdb_url: str
) -> Iterator[ClickHouseClient]:
    asyncio.run(schema_step.ensure_schema(chdb_client, tenant))
    scoped = tenant_client(chdb_url, tenant)
    yield scoped
    scoped.close()


def _validate(client: ClickHouseClient, tenant: TenantModel, sql: str) -> Any:
    spec = DashboardSpec.model_validate(
        {
            "tenantRef": {"name": tenant.name},
            "title": "t",
            "panels": [{"id": "p", "title": "p", "sql": sql}],
        }
    )
    database = str(client.query("SELECT currentDatabase() AS db")[0]["db"])
    return dashboards.validate_sql(
        client, sql, spec=spec, database=database, when=dt.datetime.now(dt.UTC)
    )


def test_valid_clickhouse_that_sqlglot_cannot_read_is_refused_with_its_position(
    tenant_scoped: ClickHouseClient, tenant: TenantModel
) -> None:
    """Old: passed (the engine parses it). New: refused, fail closed, saying where
    sqlglot stopped, after the engine confirmed it is no plain syntax error."""
    sql = "SELECT * FROM events ORDER BY timestamp DESC LIMIT 1 BY user_id LIMIT 10"
    tenant_scoped.query(f"EXPLAIN AST {sql}")
    with pytest.raises(sql_safety.UnreadableSQL, match="cannot read this SQL at line 1, column 65"):
        _validate(tenant_scoped, tenant, sql)


def test_a_syntax_error_keeps_the_engines_message(
    tenant_scoped: ClickHouseClient, tenant: TenantModel
) -> None:
    with pytest.raises(panels.PanelError) as caught:
        _validate(tenant_scoped, tenant, "SELECT count(\nFROM events WHERE")
    assert not isinstance(caught.value, sql_safety.UnreadableSQL)
    assert str(caught.value).startswith("syntax error at line 2")


def test_old_passed_a_qualified_column_that_reads_a_system_table(engine: Engine) -> None:
    """Old: judged only table identifiers, so `SELECT system.one.dummy` (no FROM)
    passed. The engine reads the table system.one for it. New: a column qualified
    with another database is refused. New is right (if harmless for system.one):"""
    sql = "SELECT system.one.dummy AS d"
    assert engine.run(sql) == repr([{"d": 0}])
    with pytest.raises(panels.PanelError, match=r"system\.one is outside"):
        engine.check(sql)
