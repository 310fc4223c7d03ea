"""Pure checks and names for dashboard panels: no I/O, unit-tested as text.

Shared by the operator (which validates and materializes panels) and the control plane
(which binds parameters and runs panel queries), so neither imports the other.
The engine decides what a panel's SQL means (`EXPLAIN AST`, `EXPLAIN`, see
`tenantry_operator.dataplane.dashboards`); this module does what must happen before
any SQL reaches it and reads what comes back:

- `single_statement`: a `;` would let a second statement through (chDB runs
  multi-statement text as a script), so it is refused before anything is sent;
- `query_parameters` / `parameter_values`: `{name:Type}` placeholders filled
  with the dashboard's variable defaults and its time range, because
  ClickHouse refuses to even parse a query whose parameters are unset;
- `parse_ast` / `check_ast`: the shape of `EXPLAIN AST` output judged: one
  SELECT (or UNION of them), no INTO OUTFILE / FORMAT / SETTINGS, no table
  functions or tables outside the tenant's database, no functions that read
  files, URLs or dictionaries;
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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
_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*(?:SETTINGS\b.*)?$", re.IGNORECASE | re.DOTALL)
_STACK = re.compile(r"\s*Stack trace.*$", re.DOTALL)

TIME_PARAMETERS = ("from", "to")
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generate_series", "generateSeries"}
)
# Functions that read outside the tenant's tables wherever they appear.
DENIED_FUNCTIONS = frozenset({"file", "url", "s3", "remote", "remoteSecure", "joinGet"})
DENIED_FUNCTION_PREFIXES = ("dictGet", "dictHas", "dictIsIn", "joinGet")
_IN_FUNCTIONS = frozenset(
    {
        "in",
        "notIn",
        "globalIn",
        "globalNotIn",
        "nullIn",
        "notNullIn",
        "globalNullIn",
        "globalNotNullIn",
    }
)
_TOP_NODES = frozenset({"SelectWithUnionQuery", "SelectIntersectExceptQuery"})
_STATEMENT_NAMES = {
    "InsertQuery": "an INSERT",
    "AlterQuery": "an ALTER",
    "DropQuery": "a DROP",
    "CreateQuery": "a CREATE",
    "RenameQuery": "a RENAME",
    "SystemQuery": "a SYSTEM statement",
    "SetQuery": "a SET",
    "OptimizeQuery": "an OPTIMIZE",
    "DeleteQuery": "a DELETE",
    "UseQuery": "a USE",
    "KillQueryQuery": "a KILL",
}
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
    if _FORMAT.search(masked[:end]):
        raise PanelError("FORMAT is not allowed: the dashboard chooses how results travel")
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


# -- EXPLAIN AST ----------------------------------------------------------------------


@dataclass
class Node:
    """One line of `EXPLAIN AST`: kind ("Function"), argument ("count"), children."""

    kind: str
    argument: str
    children: list[Node] = field(default_factory=list)

    def walk(self, parent: Node | None = None) -> Iterable[tuple[Node, Node | None]]:
        yield self, parent
        for child in self.children:
            yield from child.walk(self)


def parse_ast(lines: Sequence[str]) -> Node:
    """The tree of `EXPLAIN AST` output (one node a line, one space of indent a level)."""
    root: Node | None = None
    stack: list[tuple[int, Node]] = []
    for line in lines:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        words = line.strip().split(maxsplit=1)
        argument = words[1] if len(words) > 1 else ""
        if argument.startswith("(children") or argument.startswith("(alias"):
            argument = ""
        node = Node(words[0], argument.split(" (", 1)[0].strip())
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        else:
            raise PanelError("the SQL holds more than one statement: a panel is a single SELECT")
        stack.append((depth, node))
    if root is None:
        raise PanelError("the SQL is empty")
    return root


def check_ast(root: Node, *, database: str) -> None:
    """PanelError unless the tree is one read-only SELECT over the tenant's database."""
    if root.kind not in _TOP_NODES:
        what = _STATEMENT_NAMES.get(root.kind, f"a {root.kind.removesuffix('Query')} statement")
        raise PanelError(f"the SQL is {what}; a panel must be a read-only SELECT")
    # Beyond the query itself the top node holds INTO OUTFILE's path (a Literal) or
    # the FORMAT (an Identifier). Clients append their own FORMAT (clickhouse-connect:
    # Native), so FORMAT is judged on the panel's text (`single_statement`).
    if any(child.kind == "Literal" for child in root.children[1:]):
        raise PanelError("INTO OUTFILE is not allowed: the panel's result goes to the dashboard")
    for node, parent in root.walk():
        if node.kind == "Set":
            raise PanelError("SETTINGS are not allowed in a panel: limits come from the platform")
        if node.kind in _STATEMENT_NAMES:
            raise PanelError(f"the SQL contains {_STATEMENT_NAMES[node.kind]}; only SELECT")
        if node.kind == "Function":
            name = node.argument
            if parent is not None and parent.kind == "TableExpression":
                if name not in ALLOWED_TABLE_FUNCTIONS:
                    allowed = ", ".join(f"{f}()" for f in sorted(ALLOWED_TABLE_FUNCTIONS))
                    raise PanelError(
                        f"table function {name}() reads outside the tenant's database; "
                        f"panels read the tenant's tables (table functions allowed: {allowed})"
                    )
            elif name in DENIED_FUNCTIONS or name.startswith(DENIED_FUNCTION_PREFIXES):
                raise PanelError(
                    f"function {name}() reads outside the tenant's tables and is not allowed"
                )
        if node.kind == "TableIdentifier":
            _check_table(node.argument, database)
        if node.kind == "Function" and node.argument in _IN_FUNCTIONS and node.children:
            # `x IN db.table` names a table as a plain Identifier.
            arguments = node.children[0].children
            if len(arguments) == 2 and arguments[1].kind == "Identifier":
                _check_table(arguments[1].argument, database)


def _check_table(name: str, database: str) -> None:
    if "." not in name:
        return
    db = name.split(".", 1)[0].strip("`")
    if db != database:
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
