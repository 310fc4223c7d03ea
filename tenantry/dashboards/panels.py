"""Pure checks and names for dashboard panels: no I/O, unit-tested as text.

Shared by the operator (which validates and materializes panels) and the control plane
(which binds parameters and runs panel queries), so neither imports the other.
This module does what must happen before any SQL reaches the engine, and reads what
comes back; the engine's `EXPLAIN` then plans the panel against the tenant's schema
(see `tenantry_operator.dataplane.dashboards`):

- `single_statement`: a `;` would let a second statement through (chDB runs
  multi-statement text as a script), so it is refused before anything is sent;
- `query_parameters` / `parameter_values`: `{name:Type}` placeholders filled
  with the dashboard's variable defaults and its time range, because
  ClickHouse refuses to even parse a query whose parameters are unset;
- `check_sql`: the safety check, on sqlglot's ClickHouse parse tree of the
  panel's text: one SELECT (or UNION/INTERSECT/EXCEPT, WITH, subqueries), no
  INTO OUTFILE / FORMAT / SETTINGS at any depth, no table outside the tenant's
  database, no table function outside a small allow-list, no function that reads
  files, URLs, other servers or dictionaries; what sqlglot cannot parse is refused;
- `friendly_error`: ClickHouse's messages trimmed to what a dashboard author
  needs, with syntax-error positions turned into line and column of *their* SQL;
- `view_name` / `view_comment` / `sql_hash`: how a materialized panel's view is
  named and how the operator recognises its own views and their SQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from tenantry.api.dashboard import EARLIEST, LATEST, TIME_BOUNDS, TimeRange, Variable
from tenantry.clickhouse.client import ClickHouseError

VIEW_PREFIX = "mv_"
# Bump when the DDL of materialized panels changes: every view is then recreated.
VIEW_DDL_VERSION = "1"
_MAX_NAME = 180  # ClickHouse names become file names; stay well under 255 bytes
_PARAM = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}")
_RELATIVE = re.compile(r"^now(?:-(\d{1,5})([smhdw]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_POSITION = re.compile(r"failed at position (\d+)(?: \(([^)]*)\))?")
_UNMATCHED = re.compile(r"Unmatched parentheses: ('.') at position (\d+)")
_CODE_PREFIX = re.compile(r"^Code:\s*\d+\.\s*(?:DB::Exception:\s*)?")
_NAME_SUFFIX = re.compile(r"\s*\([A-Z][A-Z0-9_]+\)\s*$")
_IN_SCOPE = re.compile(r"\.?\s*(?:In scope|In query|While processing)\b.*$", re.DOTALL)
_STACK = re.compile(r"\s*Stack trace.*$", re.DOTALL)

TIME_PARAMETERS = ("from", "to")
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
# Errors that are about the server, not the panel: retry, do not blame the SQL.
TRANSIENT_CODES = frozenset(
    {0, 3, 32, 81, 159, 164, 202, 209, 210, 241, 242, 252, 394, 497, 516, 1001}
)
_HINTS = {
    "UNKNOWN_IDENTIFIER": "unknown column",
    "UNKNOWN_TABLE": "unknown table (panels read the tenant's `events` table)",
    "UNKNOWN_FUNCTION": "unknown function",
    "NOT_AN_AGGREGATE": "a column is neither aggregated nor in GROUP BY",
    "ILLEGAL_TYPE_OF_ARGUMENT": "wrong argument type",
    "TYPE_MISMATCH": "type mismatch",
    "UNKNOWN_QUERY_PARAMETER": "a {name:Type} parameter has no value",
    "NUMBER_OF_ARGUMENTS_DOESNT_MATCH": "wrong number of arguments",
}


class PanelError(ValueError):
    """Why a panel's SQL is refused, in words its author understands."""


# -- statements and parameters ------------------------------------------------------


def _mask(sql: str) -> str:
    """`sql` with the insides of strings, quoted names and comments blanked out.

    Lengths are kept, so positions found in the mask are positions in `sql`.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and sql[j] != ch:
                j += 2 if sql[j] == "\\" else 1
            end = min(j + 1, n)
            out.append(ch + " " * max(end - i - 2, 0) + (ch if j < n else ""))
            i = end
        elif sql.startswith("--", i) or sql.startswith("#", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " * (j - i))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def single_statement(sql: str) -> str:
    """`sql` without a trailing `;`; PanelError when it holds more than one statement."""
    masked = _mask(sql)
    stripped = masked.rstrip()
    end = len(stripped)
    if stripped.endswith(";"):
        end -= 1
    if ";" in masked[:end]:
        raise PanelError(
            "the SQL holds more than one statement (a ';' outside quotes): "
            "a panel is a single SELECT"
        )
    body = sql[:end].strip()
    if not body:
        raise PanelError("the SQL is empty")
    return body


def query_parameters(sql: str) -> dict[str, str]:
    """The `{name:Type}` placeholders outside strings and comments: name -> type."""
    masked = _mask(sql)
    found: dict[str, str] = {}
    for match in _PARAM.finditer(masked):
        name, type_name = match.group(1), sql[match.start(2) : match.end(2)].strip()
        previous = found.setdefault(name, type_name)
        if previous != type_name:
            raise PanelError(
                f"parameter {{{name}}} is used with two types, {previous} and {type_name}"
            )
    return found


def resolve_time(text: str, now: dt.datetime) -> dt.datetime:
    """ "now", "now-<n><s|m|h|d|w>" or an RFC 3339 time, as an aware UTC datetime.

    PanelError for a time a ClickHouse DateTime cannot hold (before 1970, after
    2106-02-07) or one the calendar cannot (year 1 minus an offset): the CRD refuses
    those, so this guards objects written before it did, and request parameters."""
    match = _RELATIVE.match(text.strip())
    try:
        if match:
            amount, unit = match.groups()
            delta = dt.timedelta(**{_UNITS[unit]: int(amount)}) if amount else dt.timedelta()
            resolved = (now - delta).astimezone(dt.UTC)
        else:
            try:
                parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            except ValueError as err:
                raise PanelError(f"time {text!r} is neither now[-<n><unit>] nor RFC 3339") from err
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            resolved = parsed.astimezone(dt.UTC)
    except OverflowError as err:
        raise PanelError(f"time {text!r} is out of range: {TIME_BOUNDS}") from err
    if not EARLIEST <= resolved <= LATEST:
        raise PanelError(f"time {text!r} is out of range: {TIME_BOUNDS}")
    return resolved


def _time_text(value: dt.datetime) -> str:
    # Whole seconds: the text form every DateTime/DateTime64 parameter accepts.
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def parameter_values(
    wanted: Mapping[str, str],
    *,
    variables: Sequence[Variable],
    time_range: TimeRange,
    now: dt.datetime,
) -> dict[str, str]:
    """A value (as text) for each wanted parameter: variable defaults, `from`, `to`."""
    defaults = {v.name: v.default for v in variables}
    values: dict[str, str] = {}
    for name in wanted:
        if name in defaults:
            values[name] = defaults[name]
        elif name == "from":
            values[name] = _time_text(resolve_time(time_range.from_, now))
        elif name == "to":
            values[name] = _time_text(resolve_time(time_range.to, now))
        else:
            known = ", ".join(sorted({*defaults, *TIME_PARAMETERS}))
            raise PanelError(
                f"unknown variable {{{name}:{wanted[name]}}}: declare it under "
                f"spec.variables (known: {known})"
            )
    return values


# -- the safety check, on sqlglot's ClickHouse parse tree -------------------------------


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
            line, column = _line_column(sql, token.start)
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
    raise PanelError(
        f"parameter {{{node.name}:{node.args.get('kind')}}} would let a value name a table "
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


# -- messages ------------------------------------------------------------------------


def _line_column(sql: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(sql)))
    before = sql[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def friendly_error(error: ClickHouseError, *, sql: str, prefix: str = "") -> str:
    """The engine's message for `sql` (sent as `prefix + sql`), made for its author."""
    text = _STACK.sub("", str(error)).strip()
    text = _CODE_PREFIX.sub("", text)
    text = _NAME_SUFFIX.sub("", text)
    if error.name == "SYNTAX_ERROR" or "Syntax error" in text:
        match = _POSITION.search(text)
        expected = ""
        if "Expected" in text:
            expected = ": expected " + text.split("Expected", 1)[1].strip().rstrip(".")
        unmatched = _UNMATCHED.search(text)
        if unmatched:
            line, column = _line_column(sql, int(unmatched.group(2)) - 1 - len(prefix))
            expected = f": {unmatched.group(1)} at line {line}, column {column} is never closed"
        if match:
            line, column = _line_column(sql, int(match.group(1)) - 1 - len(prefix))
            near = f" near {match.group(2)!r}" if match.group(2) else ""
            return f"syntax error at line {line}, column {column}{near}{expected}"
        return f"syntax error{expected}"
    text = _IN_SCOPE.sub("", text).strip().rstrip(".:")
    hint = _HINTS.get(error.name)
    return f"{hint}: {text}" if hint else text


# -- materialized views -----------------------------------------------------------------


def sql_hash(sql: str) -> str:
    """Short hash of a panel's SQL (whitespace-insensitive) and of our view DDL version."""
    normalised = " ".join(sql.split())
    return hashlib.sha256(f"{VIEW_DDL_VERSION}\n{normalised}".encode()).hexdigest()[:16]


def dashboard_prefix(dashboard: str) -> str:
    """`mv_<dashboard>_`: dashboard names are DNS names; '-' and '.' become '_'."""
    return VIEW_PREFIX + re.sub(r"[^a-z0-9_]", "_", dashboard.lower()) + "_"


def view_name(dashboard: str, panel: str) -> str:
    """`mv_<dashboard>_<panel>`, shortened with a hash when it would be too long.

    Different dashboards can map to one name ('a-b'/'c' and 'a'/'b_c'); the
    view's comment records its owner, so such a clash is reported instead of
    one dashboard taking over the other's view.
    """
    name = dashboard_prefix(dashboard) + panel
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(f"{dashboard}/{panel}".encode()).hexdigest()[:12]
        name = f"{name[: _MAX_NAME - 13]}_{digest}"
    return name


@dataclass(frozen=True)
class ViewOwner:
    """What a view's comment says: which dashboard panel it serves, and its SQL hash."""

    dashboard: str
    panel: str
    sql_hash: str


def view_comment(owner: ViewOwner) -> str:
    return json.dumps(
        {
            "tenantry": "panel",
            "dashboard": owner.dashboard,
            "panel": owner.panel,
            "sqlHash": owner.sql_hash,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def parse_view_comment(comment: str) -> ViewOwner | None:
    """The owner recorded in a view's comment, None for views we did not create."""
    try:
        data = json.loads(comment)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("tenantry") != "panel":
        return None
    try:
        return ViewOwner(str(data["dashboard"]), str(data["panel"]), str(data["sqlHash"]))
    except KeyError:
        return None
