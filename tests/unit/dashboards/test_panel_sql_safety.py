"""`sql_safety.check_sql`: panel SQL safety judged on sqlglot's ClickHouse parse tree.

A wide table of hostile SQL, one class of bypass a block, each with the words of the
refusal, and one of valid panels that must pass. The same hostile SQL is run through
the real engine in tests/integration/dataplane/test_panel_sql_safety.py, which shows
that the engine reads it as the check does, and where the old check (which judged the
text of `EXPLAIN AST`) and this one disagree, which is right.
"""

from __future__ import annotations

import pytest

from tenantry.dashboards import panels, sql_safety

DB = "t_acme"
OUTSIDE = "is outside the tenant's database"
ONE_STATEMENT = "more than one statement"
NOT_SELECT = "a panel must be a read-only SELECT"
ASCII = "holds a character outside ASCII"
UNREADABLE = "the panel safety check cannot read this SQL"


def table_function(name: str) -> str:
    return rf"table function {name}\(\) reads outside the tenant's database"


def function(name: str) -> str:
    return rf"function {name}\(\) reads outside the tenant's tables"


HOSTILE: list[tuple[str, str, str]] = [
    # -- comments hiding keywords, or pretending to -----------------------------------
    ("block_comment_before_from", "SELECT 1 /* x */ FROM system.tables", OUTSIDE),
    ("comment_inside_from", "SELECT * FROM/**/system.tables", OUTSIDE),
    ("comment_inside_name", "SELECT * FROM system/**/./**/tables", OUTSIDE),
    ("line_comment_then_from", "SELECT 1 -- just one\nFROM system.tables", OUTSIDE),
    ("hash_comment_then_from", "SELECT 1 # just one\nFROM system.tables", OUTSIDE),
    (
        # The engine nests block comments; so does sqlglot. A reader that did not
        # would see a string where the engine reads a subquery of system.tables.
        "nested_comment_hides_string_quote",
        "SELECT 1 /* /* */ , ' */ , (SELECT count() FROM system.tables) -- '",
        OUTSIDE,
    ),
    ("heredoc_then_subquery", "SELECT $$ -- $$, (SELECT count() FROM system.tables)", OUTSIDE),
    (
        "backslash_quote_then_subquery",
        "SELECT 'a\\'', (SELECT count() FROM system.tables)",
        OUTSIDE,
    ),
    ("comment_splits_into_outfile", "SELECT 1 INTO /* c */ OUTFILE '/tmp/x'", "INTO OUTFILE"),
    # -- case tricks ------------------------------------------------------------------
    ("mixed_case_system", "sElEcT * FrOm SyStEm.TaBlEs", OUTSIDE),
    (
        "upper_url",
        "SELECT * FROM URL('http://127.0.0.1:1/', CSV, 'a String')",
        table_function("URL"),
    ),
    ("title_file", "SELECT * FROM File('/etc/passwd', LineAsString)", table_function("File")),
    ("upper_dictget", "SELECT DICTGETSTRING('d', 'a', toUInt64(1))", function("DICTGETSTRING")),
    ("upper_remote_join", "SELECT * FROM events JOIN REMOTE('h', db.t) AS r ON 1", "REMOTE"),
    ("upper_scalar_file", "SELECT FILE('/etc/passwd')", function("FILE")),
    # -- quoted names for databases ---------------------------------------------------
    ("backticked_system", "SELECT * FROM `system`.`tables`", OUTSIDE),
    ("double_quoted_system", 'SELECT * FROM "system"."tables"', OUTSIDE),
    (
        "backticked_other_tenant",
        "SELECT count() FROM `t_other`.events",
        "t_other.events " + OUTSIDE,
    ),
    ("quoted_db_only", 'SELECT count() FROM "t_other".events', "t_other.events"),
    ("spaced_dot", "SELECT * FROM system . tables", OUTSIDE),
    ("three_part_name", "SELECT * FROM t_acme.system.tables", OUTSIDE),
    ("information_schema", "SELECT * FROM INFORMATION_SCHEMA.TABLES", OUTSIDE),
    ("information_schema_lower", "SELECT * FROM information_schema.columns", OUTSIDE),
    ("case_of_own_db", "SELECT count() FROM T_ACME.events", OUTSIDE),
    # -- nested subqueries reading system tables --------------------------------------
    (
        "in_subquery",
        "SELECT count() FROM events WHERE user_id IN (SELECT name FROM system.users)",
        "system.users " + OUTSIDE,
    ),
    ("scalar_subquery", "SELECT (SELECT count() FROM system.tables) AS n", OUTSIDE),
    (
        "exists_subquery",
        "SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM system.processes)",
        OUTSIDE,
    ),
    (
        "three_levels_deep",
        "SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM system.one)))",
        OUTSIDE,
    ),
    ("cte_reads_system", "WITH s AS (SELECT * FROM system.tables) SELECT * FROM s", OUTSIDE),
    ("scalar_cte", "WITH (SELECT count() FROM system.tables) AS n SELECT n", OUTSIDE),
    ("union_arm", "SELECT 1 UNION ALL SELECT count() FROM system.tables", OUTSIDE),
    ("intersect_arm", "SELECT 1 INTERSECT SELECT dummy FROM system.one", OUTSIDE),
    (
        "table_function_argument",
        "SELECT * FROM numbers((SELECT count() FROM system.tables))",
        OUTSIDE,
    ),
    (
        "lambda_body",
        "SELECT arrayMap(x -> (SELECT count() FROM system.tables), [1]) AS a",
        OUTSIDE,
    ),
    ("in_bare_table", "SELECT count() FROM events WHERE user_id IN system.users", OUTSIDE),
    (
        "in_parenthesised_table",
        "SELECT count() FROM events WHERE user_id IN (t_other.users)",
        "t_other.users",
    ),
    (
        "global_not_in_table",
        "SELECT count() FROM events WHERE user_id GLOBAL NOT IN t_other.users",
        OUTSIDE,
    ),
    ("join_system", "SELECT * FROM events AS e LEFT JOIN system.users AS u ON 1", OUTSIDE),
    ("comma_join_system", "SELECT * FROM events, system.one", OUTSIDE),
    # -- table functions inside joins, CTEs, unions -----------------------------------
    (
        "url_in_from",
        "SELECT * FROM url('http://127.0.0.1:1/x', CSV, 'a String')",
        table_function("url"),
    ),
    ("url_in_join", "SELECT * FROM events JOIN url('http://h/', CSV, 'a String') AS u ON 1", "url"),
    ("s3_in_left_join", "SELECT * FROM events LEFT JOIN s3('http://h/b/k', CSV) AS s ON 1", "s3"),
    ("file_in_cte", "WITH f AS (SELECT * FROM file('/etc/passwd')) SELECT * FROM f", "file"),
    (
        "remote_in_union",
        "SELECT 1 UNION ALL SELECT * FROM remote('127.0.0.1', system.one)",
        "remote",
    ),
    ("cluster_cross_join", "SELECT * FROM events CROSS JOIN cluster('c', system.one)", "cluster"),
    ("mysql_comma_join", "SELECT * FROM events, mysql('h:3306', 'db', 't', 'u', 'p')", "mysql"),
    ("merge_other_db", "SELECT * FROM merge('t_other', '.*')", table_function("merge")),
    ("view_of_system", "SELECT * FROM view(SELECT * FROM system.one)", table_function("view")),
    ("executable", "SELECT * FROM executable('id', TSV, 'a String')", "executable"),
    ("input", "SELECT * FROM input('a String')", "input"),
    ("generate_random", "SELECT * FROM generateRandom('a String')", "generateRandom"),
    # sqlglot reads `dictionary('d')` as a table with column aliases; the engine, as
    # the table function: refused as one.
    ("dictionary_table", "SELECT * FROM dictionary('t_other.d')", table_function("dictionary")),
    ("dictionary_in_join", "SELECT * FROM events JOIN dictionary('d', 1) AS d ON 1", UNREADABLE),
    (
        "remote_secure_subquery",
        "SELECT * FROM (SELECT * FROM remoteSecure('h', db.t))",
        "remoteSecure",
    ),
    (
        "cluster_all_replicas",
        "SELECT * FROM clusterAllReplicas('c', system.one)",
        "clusterAllReplicas",
    ),
    ("postgresql", "SELECT * FROM postgresql('h', 'db', 't', 'u', 'p')", "postgresql"),
    ("jdbc", "SELECT * FROM jdbc('ds', 'db', 't')", "jdbc"),
    ("odbc", "SELECT * FROM odbc('dsn', 'db', 't')", "odbc"),
    ("hdfs", "SELECT * FROM hdfs('hdfs://h/x', CSV)", "hdfs"),
    # -- functions that read outside, wherever they stand -----------------------------
    ("scalar_file", "SELECT file('/etc/passwd') AS f", function("file")),
    ("dict_get", "SELECT dictGet('d', 'a', toUInt64(1)) AS v", function("dictGet")),
    ("dict_get_or_default", "SELECT dictGetOrDefault('d', 'a', 1, '') AS v", "dictGetOrDefault"),
    ("dict_has", "SELECT dictHas('d', toUInt64(1)) AS v", "dictHas"),
    ("join_get", "SELECT joinGet('j', 'v', 1) AS v", function("joinGet")),
    ("join_get_or_null", "SELECT joinGetOrNull('j', 'v', 1) AS v", "joinGetOrNull"),
    (
        "schema_probe",
        "SELECT hasColumnInTable('t_other', 'users', 'password') AS leak",
        function("hasColumnInTable"),
    ),
    (
        "dict_in_where",
        "SELECT count() FROM events WHERE dictGetString('d', 'a', 1) = 'x'",
        "dictGet",
    ),
    # -- statements that are not one SELECT -------------------------------------------
    ("two_statements", "SELECT 1; DROP TABLE events", ONE_STATEMENT),
    ("two_statements_comment", "SELECT 1; /* and then */ SELECT 2", ONE_STATEMENT),
    ("semicolon_after_line_comment", "SELECT 1 -- c\n; SELECT 2", ONE_STATEMENT),
    ("trailing_statement_after_comment", "SELECT 1;\n-- bye\nSYSTEM SHUTDOWN", ONE_STATEMENT),
    ("insert", "INSERT INTO events SELECT * FROM events", "the SQL is an INSERT; " + NOT_SELECT),
    ("alter_delete", "ALTER TABLE events DELETE WHERE 1", "ALTER"),
    ("drop", "DROP TABLE events", "a DROP"),
    ("create", "CREATE TABLE x (a UInt8) ENGINE = Memory", "a CREATE"),
    ("truncate", "TRUNCATE TABLE events", "TRUNCATE"),
    ("system", "SYSTEM DROP DNS CACHE", "a SYSTEM statement"),
    ("set", "SET max_threads = 1", "SET"),
    ("use", "USE system", "a USE"),
    ("optimize", "OPTIMIZE TABLE events FINAL", "OPTIMIZE"),
    ("kill", "KILL QUERY WHERE 1", UNREADABLE),
    ("grant", "GRANT SELECT ON *.* TO u", "GRANT"),
    ("rename", "RENAME TABLE events TO e2", "RENAME"),
    ("show", "SHOW TABLES FROM system", "SHOW"),
    ("describe", "DESCRIBE TABLE system.users", "DESCRIBE"),
    ("explain", "EXPLAIN SELECT * FROM system.tables", "EXPLAIN"),
    # -- unicode look-alikes and invisible characters ---------------------------------
    ("cyrillic_s_system", "SELECT * FROM \u0455ystem.tables", ASCII),
    ("greek_omicron_from", "SELECT 1 FR\u039fM events", ASCII),
    ("fullwidth_select", "\uff33ELECT 1", ASCII),
    ("zero_width_space", "SELECT 1 \u200b, 2", ASCII),
    ("zero_width_in_name", "SELECT * FROM sys\u200btem.tables", ASCII),
    ("quoted_lookalike_db", "SELECT * FROM `\u0455ystem`.tables", OUTSIDE),
    # -- SETTINGS, FORMAT, INTO at any depth ------------------------------------------
    ("settings", "SELECT 1 SETTINGS max_threads = 64", "SETTINGS are not allowed"),
    ("settings_in_subquery", "SELECT * FROM (SELECT 1 SETTINGS readonly = 0)", "SETTINGS"),
    (
        "settings_in_cte",
        "WITH a AS (SELECT 1 SETTINGS max_threads = 1) SELECT * FROM a",
        "SETTINGS",
    ),
    ("settings_on_union", "SELECT 1 UNION ALL SELECT 2 SETTINGS max_threads = 1", "SETTINGS"),
    ("settings_in_scalar", "SELECT (SELECT 1 SETTINGS max_threads = 1) AS x", "SETTINGS"),
    ("format", "SELECT 1 FORMAT JSON", "FORMAT is not allowed"),
    ("format_lower", "SELECT 1\nformat CSV", "FORMAT is not allowed"),
    ("settings_then_format", "SELECT 1 SETTINGS a = 1 FORMAT TSV", "SETTINGS|FORMAT"),
    ("into_outfile", "SELECT 1 INTO OUTFILE '/tmp/x.csv'", "INTO OUTFILE is not allowed"),
    ("into_outfile_lower", "select 1 into outfile '/tmp/x' format CSV", "INTO OUTFILE"),
    ("into_outfile_truncate", "SELECT 1 INTO OUTFILE '/tmp/x' TRUNCATE", "INTO OUTFILE"),
    ("into_table", "SELECT 1 AS a INTO t", "INTO is not allowed"),
    # -- parameters that name things --------------------------------------------------
    ("identifier_table", "SELECT * FROM {t:Identifier}", r"\{t:Identifier\} would let a value"),
    ("identifier_database", "SELECT * FROM {db:Identifier}.events", r"\{db:Identifier\}"),
    ("identifier_column", "SELECT {c:Identifier} FROM events", r"\{c:Identifier\}"),
    ("untyped_placeholder", "SELECT count() FROM events WHERE user_id = ?", "not a parameter"),
    # -- qualified columns name their table: the engine reads system.one without FROM --
    ("system_one_column", "SELECT system.one.dummy", "system.one " + OUTSIDE),
    ("other_db_column", "SELECT t_other.users.name FROM events", "t_other.users"),
    # -- what the check cannot read, refused (fail closed) ----------------------------
    ("unclosed_string", "SELECT 'x", UNREADABLE),
    ("unclosed_comment", "SELECT 1 /* x", UNREADABLE),
    ("not_sql", "SELECT FROM WHERE", UNREADABLE),
]


@pytest.mark.parametrize(
    ("sql", "message"),
    [(sql, message) for _, sql, message in HOSTILE],
    ids=[i for i, *_ in HOSTILE],
)
def test_hostile_sql_is_refused(sql: str, message: str) -> None:
    with pytest.raises(panels.PanelError, match=message):
        sql_safety.check_sql(sql, database=DB)


VALID: list[tuple[str, str]] = [
    ("count", "SELECT count() FROM events"),
    ("own_database", "SELECT count() FROM t_acme.events"),
    ("own_database_quoted", "SELECT count() FROM `t_acme`.`events`"),
    ("per_day", "SELECT toDate(timestamp) AS d, count() AS n FROM events GROUP BY d ORDER BY d"),
    (
        "parameters",
        "SELECT uniq(user_id) AS users FROM events\n"
        "WHERE event = {kind:String} AND timestamp >= {from:DateTime}\n"
        "AND timestamp < { to : DateTime }",
    ),
    (
        "typed_parameters",
        "SELECT count() FROM events WHERE has({ids:Array(String)}, user_id) "
        "AND timestamp > {at:DateTime64(3, 'UTC')} AND {n:Nullable(UInt8)} IS NULL",
    ),
    ("numbers_union", "SELECT number FROM numbers(3) UNION ALL SELECT 1"),
    ("series", "SELECT * FROM generate_series(1, 10)"),
    ("zeros", "SELECT count() FROM zeros(10)"),
    ("values", "SELECT * FROM values('a UInt8', 1, 2)"),
    ("cte", "WITH v AS (SELECT * FROM events WHERE event = 'view') SELECT count() FROM v"),
    ("scalar_cte", "WITH (SELECT max(timestamp) FROM events) AS last SELECT last"),
    ("in_subquery", "SELECT count() FROM events WHERE user_id IN (SELECT user_id FROM events)"),
    ("in_own_table", "SELECT count() FROM events WHERE user_id IN t_acme.users"),
    ("in_alias_column", "SELECT count() FROM events AS t_other WHERE user_id IN (t_other.user_id)"),
    ("in_list", "SELECT count() FROM events WHERE event NOT IN ('a', 'b')"),
    (
        "join",
        "SELECT e.event, count() FROM events AS e INNER JOIN (SELECT user_id FROM events) AS u "
        "USING user_id GROUP BY e.event",
    ),
    ("array_join", "SELECT tag, count() FROM events ARRAY JOIN tags AS tag GROUP BY tag"),
    (
        "window",
        "SELECT event, row_number() OVER (PARTITION BY event ORDER BY timestamp) FROM events",
    ),
    ("quantiles", "SELECT quantileTDigest(0.9)(duration) AS p90, countIf(ok) FROM events"),
    ("states", "SELECT sumMerge(s) FROM (SELECT sumState(n) AS s FROM events)"),
    ("lambda", "SELECT arrayMap(x -> x * 2, [1, 2, 3]) AS doubled"),
    (
        "json",
        "SELECT JSONExtractString(properties, 'country') AS c, count() FROM events GROUP BY c",
    ),
    ("interval", "SELECT count() FROM events WHERE timestamp > now() - INTERVAL 1 HOUR"),
    (
        "fill",
        "SELECT toStartOfHour(timestamp) AS h, count() FROM events GROUP BY h ORDER BY h WITH FILL",
    ),
    ("limit_by", "SELECT * FROM events ORDER BY timestamp DESC LIMIT 1 BY user_id"),
    ("totals", "SELECT event, count() FROM events GROUP BY event WITH TOTALS"),
    ("final_sample", "SELECT count() FROM events FINAL"),
    ("parenthesised", "(SELECT count() FROM events)"),
    ("trailing_semicolon_and_comment", "SELECT 1; -- done"),
    ("comments", "/* panel */ SELECT count() -- all\nFROM events # really"),
    ("format_as_name", "SELECT event AS format FROM events ORDER BY format DESC"),
    ("format_function", "SELECT format('{} {}', event, user_id) AS s FROM events"),
    ("settings_word_in_string", "SELECT 'SETTINGS max_threads = 1 FORMAT JSON' AS s"),
    ("system_in_string", "SELECT count() FROM events WHERE event = 'system.tables'"),
    (
        "unicode_in_strings",
        "SELECT 'caf\u00e9 \u0455ystem' AS s, `\u043f\u043e\u043b\u0435` FROM events",
    ),
    ("nbsp_whitespace", "SELECT\u00a0count() FROM events"),
    ("system_named_column", "SELECT system FROM events"),
    ("qualified_column", "SELECT t_acme.events.event, events.user_id, e.ts FROM events AS e"),
    ("url_named_column", "SELECT domain(url) AS d FROM events"),
]


@pytest.mark.parametrize("sql", [sql for _, sql in VALID], ids=[i for i, _ in VALID])
def test_valid_panels_pass(sql: str) -> None:
    sql_safety.check_sql(sql, database=DB)


@pytest.mark.parametrize("name", sorted(sql_safety.DENIED_FUNCTIONS))
def test_every_denied_function_is_refused_as_a_function_and_as_a_table(name: str) -> None:
    """By name, or (view, dictionary: keywords to sqlglot) as SQL it cannot read."""
    for sql in (f"SELECT {name}('x') AS v", f"SELECT * FROM {name}('x')"):  # noqa: S608 - test SQL
        with pytest.raises(panels.PanelError) as caught:
            sql_safety.check_sql(sql, database=DB)
        refused = isinstance(caught.value, sql_safety.UnreadableSQL)
        assert refused or f"{name}()" in str(caught.value), (sql, str(caught.value))


UNREADABLE_BUT_VALID = [
    # Valid ClickHouse that sqlglot 30 cannot parse: refused (fail closed) with where it
    # stopped; the operator has the engine confirm it is not a plain syntax error first.
    "SELECT * FROM events ORDER BY timestamp DESC LIMIT 1 BY user_id LIMIT 10",
]


@pytest.mark.parametrize("sql", UNREADABLE_BUT_VALID)
def test_what_sqlglot_cannot_read_is_refused_with_a_position(sql: str) -> None:
    with pytest.raises(sql_safety.UnreadableSQL, match=r"at line 1, column \d+ near 'LIMIT'"):
        sql_safety.check_sql(sql, database=DB)


def test_unreadable_sql_says_where() -> None:
    with pytest.raises(sql_safety.UnreadableSQL) as caught:
        sql_safety.check_sql("SELECT count(\nFROM events WHERE", database=DB)
    assert "at line 2, column 13 near 'WHERE'" in str(caught.value)


def test_a_lookalike_is_located() -> None:
    with pytest.raises(panels.PanelError, match="at line 2, column 6"):
        sql_safety.check_sql("SELECT *\nFROM \u0455ystem.tables", database=DB)


def test_multiple_statements_are_refused_before_anything_is_sent_too() -> None:
    """`single_statement` (text) and the tree agree on a second statement."""
    for sql in ("SELECT 1; DROP TABLE events", "SELECT 1; /* c */ SELECT 2"):
        with pytest.raises(panels.PanelError, match=ONE_STATEMENT):
            panels.single_statement(sql)
