"""Pure rules of a panel-data request: which values its query runs with, and the key
its result is cached under. No I/O, unit-tested as plain functions.

The binding itself is shared with the operator (``tenantry.dashboards.panels``): the
same ``single_statement``, ``query_parameters`` and ``parameter_values`` that
validated the panel turn the request into ``{name:Type}`` query parameters, so what
the control plane runs is exactly what the operator checked. Values travel as
ClickHouse query parameters, never as SQL text; this module only decides *which*
values are acceptable:

- ``var.<name>`` must name a declared variable; a custom variable takes one of its
  options, an interval variable a number or duration, a constant cannot be changed;
- ``from``/``to`` take the Dashboard's time forms ("now-1h" or RFC 3339) naming a real
  time between ``EARLIEST`` and ``LATEST`` (what a ClickHouse ``DateTime`` holds: beyond
  it ClickHouse silently clamps the value, or fails to read it);
- relative times resolve against ``now`` rounded down to the refresh interval, so
  requests within one refresh share their cache entry (a panel of "now-1h" would
  otherwise have a new key every second and never hit).

Every refusal of a request value is a ``BadRequest`` whose message starts with the
parameter's name (``from: ...``, ``var.ev: ...``); a stored value that cannot be used
(the dashboard's own default time range) is the panel's problem, ``PanelUnusable``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from tenantry.api.dashboard import (
    EARLIEST,
    LATEST,
    TIME_PATTERN,
    DashboardSpec,
    Panel,
    TimeRange,
    VariableType,
    check_time,
)
from tenantry.dashboards import panels

VAR_PREFIX = "var."
TIME_PARAMETERS = ("from", "to")
# EARLIEST..LATEST, the times a panel may query, are the Dashboard's own (the range of a
# ClickHouse ``DateTime``: a ``DateTime64`` holds more, but a ``DateTime`` parameter
# outside it is clamped to its ends without a word, and years before 1000 cannot be read
# at all), and so is ``check_time``: a request's time obeys the rule a stored one does.
_TIME = re.compile(TIME_PATTERN)
_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})$")
_TIME_FORMS = "now, now-<n><s|m|h|d|w> or an RFC 3339 time with zone (2026-03-01T00:00:00Z)"
_INTERVAL = re.compile(r"^[0-9]{1,9}(ms|s|m|h|d|w)?$")
_DURATION = re.compile(r"^([0-9]{1,5})(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


class BadRequest(ValueError):
    """A request the panel cannot run with (422)."""


class PanelUnusable(ValueError):
    """A panel whose SQL cannot run as stored (409)."""


@dataclass(frozen=True)
class Query:
    """What runs on ClickHouse: the panel statement and its parameter values (as text).

    ``sources`` names, for each query parameter whose value the request gave, the
    request parameter it came from (``ev`` -> ``var.ev``, ``from`` -> ``from``): a value
    ClickHouse cannot read as the parameter's type is then the request's error (422),
    while a stored default it cannot read is the panel's (409).
    """

    sql: str
    params: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def fingerprint(self) -> str:
        """A digest of the SQL and the values: the variable part of the cache key."""
        text = json.dumps([self.sql, sorted(self.params.items())], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def refresh_seconds(refresh: str) -> int:
    """The Dashboard's ``refresh`` ("30s", "5m", "1h") in seconds, at least 1."""
    match = _DURATION.match(refresh)
    if not match:
        raise ValueError(f"not a refresh interval: {refresh!r}")
    return max(1, int(match.group(1)) * _SECONDS[match.group(2)])


def window_start(now: dt.datetime, seconds: int) -> dt.datetime:
    """``now`` rounded down to a multiple of ``seconds`` since the epoch (UTC)."""
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def _iso(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(name: str, text: str, now: dt.datetime) -> dt.datetime:
    """``text``, one of the Dashboard's time forms, resolved against ``now`` (UTC).

    ``BadRequest`` naming ``name`` when it is none of the forms, names no real time (a
    30 February, hour 24, an offset of +23:60), or lies outside ``EARLIEST``..``LATEST``
    ("now-99999w", year 2200, year 1 with an offset that leaves year 1).
    """
    if not _TIME.fullmatch(text):
        raise BadRequest(f"{name}: must be {_TIME_FORMS}")
    offset = _OFFSET.search(text)
    if offset and (int(offset.group(2)) > 23 or int(offset.group(3)) > 59):
        raise BadRequest(f"{name}: {text} has no valid zone offset (at most ±23:59)")
    try:
        check_time(text)  # the Dashboard's rule: bounds, and how far back "now-" reaches
    except ValueError as err:
        raise BadRequest(f"{name}: {err}") from None
    try:
        at = panels.resolve_time(text, now)
    except (ValueError, OverflowError):  # PanelError is a ValueError
        raise BadRequest(
            f"{name}: {text} is not a real time (check the day of the month and the hour)"
        ) from None
    if not EARLIEST <= at <= LATEST:
        raise BadRequest(
            f"{name}: {text} is outside the times a panel can query, "
            f"{_iso(EARLIEST)} to {_iso(LATEST)}"
        )
    return at


def check_time_range(time_range: TimeRange, now: dt.datetime) -> None:
    """A Dashboard's own default range: both ends usable and in order (``BadRequest``,
    naming ``timeRange.from`` or ``timeRange.to``)."""
    start = parse_time("timeRange.from", time_range.from_, now)
    end = parse_time("timeRange.to", time_range.to, now)
    if start > end:
        raise BadRequest("timeRange.from must not be after timeRange.to")


def find_panel(spec: DashboardSpec, panel_id: str) -> Panel | None:
    return next((p for p in spec.panels if p.id == panel_id), None)


def panel_status_problem(
    status: Mapping[str, object], panel_id: str, *, generation: int | None
) -> str | None:
    """Why the operator's status does not (yet) vouch for the panel, or None.

    The status must describe the current generation: a panel edited after the last
    validation runs only once the operator has judged the new SQL.
    """
    observed = status.get("observedGeneration")
    if generation is not None and observed != generation:
        return "the dashboard's latest change has not been validated yet; retry shortly"
    entries = status.get("panels")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("id") == panel_id:
            if entry.get("valid") is True:
                return None
            message = str(entry.get("message") or "the panel's SQL is invalid")
            return f"panel {panel_id} is invalid: {message}"
    return f"panel {panel_id} has not been validated yet; retry shortly"


def _variable_values(spec: DashboardSpec, given: Mapping[str, str]) -> DashboardSpec:
    declared = {v.name: v for v in spec.variables}
    for name, value in given.items():
        variable = declared.get(name)
        if variable is None:
            known = ", ".join(sorted(declared)) or "none"
            raise BadRequest(f"{VAR_PREFIX}{name}: no such variable (declared: {known})")
        if len(value) > 1000:
            raise BadRequest(f"{VAR_PREFIX}{name}: at most 1000 characters")
        if variable.type == VariableType.CONSTANT and value != variable.default:
            raise BadRequest(f"{VAR_PREFIX}{name}: a constant, which cannot be set")
        if variable.type == VariableType.CUSTOM and value not in variable.options:
            raise BadRequest(f"{VAR_PREFIX}{name}: must be one of the variable's options")
        if variable.type == VariableType.INTERVAL and not _INTERVAL.fullmatch(value):
            raise BadRequest(f"{VAR_PREFIX}{name}: must be an interval such as 5m or 300")
    variables = [
        v.model_copy(update={"default": given[v.name]}) if v.name in given else v
        for v in spec.variables
    ]
    return spec.model_copy(update={"variables": variables})


def build_query(
    spec: DashboardSpec,
    panel: Panel,
    *,
    time_from: str | None,
    time_to: str | None,
    variables: Mapping[str, str],
    now: dt.datetime,
) -> Query:
    """The panel's SQL and its parameter values for this request.

    ``BadRequest`` for values the request may not use, ``PanelUnusable`` when the
    stored SQL itself cannot run (the operator would have marked it invalid) or the
    dashboard's default time range, needed because the request gave no time, cannot.
    """
    window = window_start(now, refresh_seconds(spec.refresh))
    given = {"from": time_from, "to": time_to}
    stored = {"from": spec.time_range.from_, "to": spec.time_range.to}
    texts: dict[str, str] = {}
    resolved: dict[str, dt.datetime] = {}
    for name in TIME_PARAMETERS:
        text = given[name]
        if text:
            resolved[name] = parse_time(name, text, window)
            texts[name] = text
            continue
        try:
            resolved[name] = parse_time(f"timeRange.{name}", stored[name], window)
        except BadRequest as err:
            raise PanelUnusable(f"the dashboard's default {err} (give from and to)") from None
        texts[name] = stored[name]
    if resolved["from"] > resolved["to"]:
        if given["from"] or given["to"]:
            raise BadRequest("from must not be after to")
        raise PanelUnusable("the dashboard's default timeRange.from is after timeRange.to")
    try:
        time_range = TimeRange.model_validate(texts)
    except ValidationError as err:  # parse_time applies the same rules: not expected
        first = err.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else "from"
        raise BadRequest(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    bound = _variable_values(spec, variables)
    try:
        sql = panels.single_statement(panel.sql)
        wanted = panels.query_parameters(sql)
        params = panels.parameter_values(
            wanted, variables=bound.variables, time_range=time_range, now=window
        )
    except panels.PanelError as err:
        raise PanelUnusable(str(err)) from None
    declared = {v.name for v in spec.variables}
    sources: dict[str, str] = {}
    for name in params:
        if name in declared:  # the operator's rule: a variable named from/to wins
            if name in variables:
                sources[name] = f"{VAR_PREFIX}{name}"
        elif given.get(name):
            sources[name] = name
    return Query(sql=sql, params=params, sources=sources)


def request_variables(query: Mapping[str, str]) -> dict[str, str]:
    """The ``var.<name>`` entries of a query string, by name."""
    return {k.removeprefix(VAR_PREFIX): v for k, v in query.items() if k.startswith(VAR_PREFIX)}
