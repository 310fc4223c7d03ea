"""Panel SQL safety, judged on sqlglot's ClickHouse parse tree of the panel's own text.

`check_sql` is what the operator runs on every panel before the engine sees it (see
`tenantry_operator.dataplane.dashboards`); the engine's `EXPLAIN` then judges meaning
(unknown columns, tables, functions). The check parses; it never reads the text of
`EXPLAIN AST`.

The risk of judging with a parser that is not the engine's is that the two read the
same text differently. Where they could, the check is stricter than the engine:
outside strings, quoted names and comments it accepts only ASCII (sqlglot reads an
invisible or look-alike character as part of a name, the engine as whitespace or an
error); sqlglot nests block comments as the engine does; `x IN db.t` is a table read,
as the engine has it; what sqlglot cannot parse, or misparses into an error, is
refused. tests/integration/dataplane/test_panel_sql_safety.py runs the hostile and the
tricky SQL through the engine (chDB) to show the two agree.

Its own module because importing sqlglot costs about 37 MiB and 0.45 s: the control
plane, which runs panels the operator has validated, imports `panels` and never this
(an import-linter contract keeps it so), and the operator imports it only when it first
judges a panel.
"""

from __future__ import annotations

from typing import NoReturn

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from tenantry.dashboards.panels import PanelError, line_column

# Table functions that make rows from their arguments alone (numbers, zeros, a series,
# inline values): they read no table, file, URL, server or setting, and their arguments
# are checked like the rest of the query. Compared in lower case.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generate_series", "generateSeries"}
)
_ALLOWED_LOWER = frozenset(name.lower() for name in ALLOWED_TABLE_FUNCTIONS)
# Functions that read outside the tenant's tables wherever they appear (lower case):
# files, URLs and object stores, other servers and databases, programs, the client's
# input, other tables by pattern, and (by prefix) dictionaries and Join tables.
DENIED_FUNCTIONS = frozenset(
    {
        "file",
        "filecluster",
        "url",
        "urlcluster",
        "s3",
        "s3cluster",
        "gcs",
        "hdfs",
        "hdfscluster",
        "azureblobstorage",
        "azureblobstoragecluster",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "sqlite",
        "mongodb",
        "redis",
        "jdbc",
        "odbc",
        "executable",
        "input",
        "merge",
        "dictionary",
        "view",
        "hascolumnintable",
        "catboostevaluate",
    }
)
DENIED_FUNCTION_PREFIXES = ("dict", "joinget")

# -- the check -------------------------------------------------------------------------


class UnreadableSQL(PanelError):
    """The safety check's parser cannot read the SQL: refused, fail closed.

    The caller may ask the engine's own parser first: when the engine refuses the SQL
    too, its syntax error (with line and column) is the better message."""


def check_sql(sql: str, *, database: str) -> None:
    """PanelError unless `sql` is one read-only SELECT over the tenant's database.

    Judged on sqlglot's parse of the panel's own text (ClickHouse dialect), with its
    `{name:Type}` parameters as placeholders (no value is substituted first):

    - exactly one statement, a query: SELECT, or UNION / INTERSECT / EXCEPT and
      WITH of them, subqueries anywhere; nothing that writes, anywhere;
    - every table unqualified or in the tenant's database (so never `system.*`,
      `INFORMATION_SCHEMA.*` or another tenant's); `x IN db.t` and `x IN (db.t)`
      name the table `db.t` for the engine unless `db` is a table of that SELECT;
    - table functions only from ALLOWED_TABLE_FUNCTIONS; no function of
      DENIED_FUNCTIONS (files, URLs, object stores, other servers, dictionaries,
      Join tables, programs) anywhere, in any letter case;
    - no SETTINGS, FORMAT, INTO or INTO OUTFILE, at any depth;
    - no `{name:Identifier}` parameter (its value would name a table or column);
    - outside strings, quoted names and comments only ASCII: sqlglot reads a
      look-alike or invisible character (U+200B) as part of a name where the engine
      reads whitespace or refuses it, and the two must read the same query.

    `UnreadableSQL` (a PanelError) when sqlglot cannot parse the text: nothing it
    cannot read passes.
    """
    tokens = _tokens(sql)
    statement = _one_query(tokens, sql)
    for node in statement.walk():
        _check_node(node, database)


_DIALECT = Dialect.get_or_raise("clickhouse")
# Token types whose text may hold any character: strings and quoted names.
_QUOTED_TOKENS = frozenset(
    getattr(TokenType, name)
    for name in (
        "STRING",
        "IDENTIFIER",
        "HEREDOC_STRING",
        "NATIONAL_STRING",
        "RAW_STRING",
        "BIT_STRING",
        "HEX_STRING",
        "BYTE_STRING",
        "UNICODE_STRING",
    )
    if hasattr(TokenType, name)
)
_WRITES: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Insert, "an INSERT"),
    (exp.Alter, "an ALTER"),
    (exp.Drop, "a DROP"),
    (exp.Create, "a CREATE"),
    (exp.Delete, "a DELETE"),
    (exp.Update, "an UPDATE"),
    (exp.Merge, "a MERGE"),
    (exp.TruncateTable, "a TRUNCATE"),
    (exp.Set, "a SET"),
    (exp.Use, "a USE"),
    (exp.Describe, "a DESCRIBE"),
    (exp.Copy, "a COPY"),
    (exp.Kill, "a KILL"),
    (exp.Grant, "a GRANT"),
    (exp.Revoke, "a REVOKE"),
)


def _tokens(sql: str) -> list[Token]:
    try:
        tokens = _DIALECT.tokenize(sql)
    except TokenError:
        raise UnreadableSQL(
            "the panel safety check cannot read this SQL: a string, quoted name or "
            "comment is left open"
        ) from None
    for before, token in zip([None, *tokens], tokens, strict=False):
        if (
            before is not None
            and before.token_type == TokenType.INTO
            and token.text.upper() == "OUTFILE"
        ):
            raise PanelError(
                "INTO OUTFILE is not allowed: the panel's result goes to the dashboard"
            )
        if token.token_type not in _QUOTED_TOKENS and not token.text.isascii():
            line, column = line_column(sql, token.start)
            raise PanelError(
                f"{token.text!r} at line {line}, column {column} holds a character outside "
                "ASCII: outside quotes and comments write plain ASCII (a look-alike or "
                "invisible character reads differently in the engine)"
            )
    return tokens


def _one_query(tokens: list[Token], sql: str) -> exp.Query:
    try:
        parsed = _DIALECT.parser().parse(tokens, sql)
    except ParseError as err:
        raise UnreadableSQL(_unreadable(err)) from None
    except Exception:  # a parser bug (an IndexError was seen) refuses, never passes
        raise UnreadableSQL(_unreadable(None)) from None
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        raise PanelError("the SQL is empty")
    if len(statements) > 1:
        raise PanelError("the SQL holds more than one statement: a panel is a single SELECT")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise PanelError(
            f"the SQL is {_statement_name(statement)}; a panel must be a read-only SELECT"
        )
    return statement


def _unreadable(err: ParseError | None) -> str:
    where = ""
    if err is not None and err.errors:
        first = err.errors[0]
        highlight = str(first.get("highlight") or "")
        line = int(first.get("line") or 0)
        column = max(1, int(first.get("col") or 0) - len(highlight) + 1)
        if line:
            near = f" near {highlight!r}" if highlight else ""
            where = f" at line {line}, column {column}{near}"
    return (
        f"the panel safety check cannot read this SQL{where}: ClickHouse syntax it does "
        "not know; write that part another way (panels are checked before they run)"
    )


def _statement_name(statement: exp.Expr) -> str:
    if isinstance(statement, exp.Command):
        return f"a {str(statement.this).upper()} statement"
    for kind, name in _WRITES:
        if isinstance(statement, kind):
            return name
    return f"a {statement.key.upper()} statement"


def _check_node(node: exp.Expr, database: str) -> None:
    if isinstance(node, exp.Command) or any(isinstance(node, kind) for kind, _ in _WRITES):
        raise PanelError(f"the SQL contains {_statement_name(node)}; only SELECT")
    if isinstance(node, exp.Query):
        if node.args.get("settings"):
            raise PanelError("SETTINGS are not allowed in a panel: limits come from the platform")
        if node.args.get("format"):
            raise PanelError("FORMAT is not allowed: the dashboard chooses how results travel")
        if node.args.get("into"):
            raise PanelError("INTO is not allowed: the panel's result goes to the dashboard")
    if isinstance(node, exp.Placeholder) and not isinstance(node.args.get("kind"), exp.DataType):
        _name_parameter(node)
    if isinstance(node, exp.Table):
        _check_table(node, database)
    elif isinstance(node, exp.In):
        _check_in(node, database)
    elif isinstance(node, exp.Column) and node.args.get("db") is not None:
        # `db.table.column`: the engine reads it only from a table of the FROM clause,
        # or from `system.one` when there is none (`SELECT system.one.dummy`).
        if node.args.get("catalog") is not None or node.db != database:
            _outside(".".join(part.name for part in node.parts[:-1]))
    elif isinstance(node, exp.Func):
        name = _function_name(node)
        if name.lower() in DENIED_FUNCTIONS or name.lower().startswith(DENIED_FUNCTION_PREFIXES):
            raise PanelError(
                f"function {name}() reads outside the tenant's tables and is not allowed"
            )


def _function_name(node: exp.Func) -> str:
    this = node.args.get("this")
    return this if isinstance(this, str) else node.sql_name()


def _name_parameter(node: exp.Placeholder) -> NoReturn:
    kind = node.args.get("kind")
    if kind is None:
        raise PanelError(
            f"placeholder {node.sql(dialect='clickhouse')} is not a parameter: "
            "write {name:Type}, for example {country:String}"
        )
    raise PanelError(
        f"parameter {{{node.name}:{kind}}} would let a value name a table "
        "or column, and only the variable's default is checked; parameters of a panel are "
        "values ({name:String}, {from:DateTime})"
    )


def _check_table(table: exp.Table, database: str) -> None:
    for part in (table.this, table.args.get("db"), table.args.get("catalog")):
        if isinstance(part, exp.Placeholder):
            _name_parameter(part)
    target = table.this
    alias = table.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns and not alias.name:
        # sqlglot reads `dictionary('d')` as the table `dictionary` with a list of
        # column aliases; the engine calls the table function dictionary().
        _check_table_function(table.name)
    if isinstance(target, exp.Identifier):
        if table.args.get("catalog") is not None:
            _outside(".".join(part.name for part in table.parts))
        if table.args.get("db") is not None and table.db != database:
            _outside(f"{table.db}.{table.name}")
    elif isinstance(target, exp.Func):
        _check_table_function(_function_name(target))
    else:
        raise PanelError(
            f"the table expression {table.sql(dialect='clickhouse')!r} cannot be checked; "
            "panels read the tenant's tables by name"
        )


def _check_table_function(name: str) -> None:
    if name.lower() not in _ALLOWED_LOWER:
        allowed = ", ".join(f"{f}()" for f in sorted(ALLOWED_TABLE_FUNCTIONS))
        raise PanelError(
            f"table function {name}() reads outside the tenant's database; "
            f"panels read the tenant's tables (table functions allowed: {allowed})"
        )


def _check_in(node: exp.In, database: str) -> None:
    """`x IN db.t` and `x IN (db.t)`: the engine reads the table `db.t`, unless `db`
    is a table (or alias) of the enclosing SELECT, which makes `db.t` a column."""
    field = node.args.get("field")
    listed = node.expressions
    target = field if field is not None else (listed[0] if len(listed) == 1 else None)
    if field is not None and isinstance(target, exp.Func):
        _check_table_function(_function_name(target))
    if not isinstance(target, exp.Column) or not target.table:
        return
    qualifiers = [part.name for part in target.parts[:-1]]
    if len(qualifiers) == 1 and (qualifiers[0] == database or qualifiers[0] in _in_scope(node)):
        return
    _outside(".".join(part.name for part in target.parts))


def _in_scope(node: exp.Expression) -> set[str]:
    """Names and aliases of the tables in the FROM and JOINs of `node`'s SELECT."""
    select = node.find_ancestor(exp.Select)
    if select is None:
        return set()
    sources: list[exp.Expression] = []
    from_ = select.args.get("from_")
    if isinstance(from_, exp.From):
        sources.append(from_.this)
    sources.extend(join.this for join in select.args.get("joins") or [])
    return {source.alias_or_name for source in sources if source.alias_or_name}


def _outside(name: str) -> NoReturn:
    raise PanelError(
        f"table {name} is outside the tenant's database; "
        "write the table name alone (for example `events`)"
    )
