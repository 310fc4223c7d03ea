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
- (the safety check, on sqlglot's parse tree, is `tenantry.dashboards.sql_safety`:
  a module of its own, so the control plane, which never runs it, never loads
  sqlglot);
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


# -- messages ------------------------------------------------------------------------


def line_column(sql: str, offset: int) -> tuple[int, int]:
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
            line, column = line_column(sql, int(unmatched.group(2)) - 1 - len(prefix))
            expected = f": {unmatched.group(1)} at line {line}, column {column} is never closed"
        if match:
            line, column = line_column(sql, int(match.group(1)) - 1 - len(prefix))
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
