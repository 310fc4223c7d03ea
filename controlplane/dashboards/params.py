"""Pure rules of a panel-data request: which values its query runs with, and the key
its result is cached under. No I/O, unit-tested as plain functions.

The binding itself is the operator's (``tenantry_operator.dataplane.panels``): the
same ``single_statement``, ``query_parameters`` and ``parameter_values`` that
validated the panel turn the request into ``{name:Type}`` query parameters, so what
the control plane runs is exactly what the operator checked. Values travel as
ClickHouse query parameters, never as SQL text; this module only decides *which*
values are acceptable:

- ``var.<name>`` must name a declared variable; a custom variable takes one of its
  options, an interval variable a number or duration, a constant cannot be changed;
- ``from``/``to`` take the Dashboard's time forms ("now-1h" or RFC 3339);
- relative times resolve against ``now`` rounded down to the refresh interval, so
  requests within one refresh share their cache entry (a panel of "now-1h" would
  otherwise have a new key every second and never hit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError
from tenantry_operator.dataplane import panels

from tenantry.api.dashboard import DashboardSpec, Panel, TimeRange, VariableType

VAR_PREFIX = "var."
_INTERVAL = re.compile(r"^[0-9]{1,9}(ms|s|m|h|d|w)?$")
_DURATION = re.compile(r"^([0-9]{1,5})(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


class BadRequest(ValueError):
    """A request the panel cannot run with (422)."""


class PanelUnusable(ValueError):
    """A panel whose SQL cannot run as stored (409)."""


@dataclass(frozen=True)
class Query:
    """What runs on ClickHouse: the panel statement and its parameter values (as text)."""

    sql: str
    params: dict[str, str]

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
            raise BadRequest(f"unknown variable {name!r} (declared: {known})")
        if len(value) > 1000:
            raise BadRequest(f"variable {name!r}: at most 1000 characters")
        if variable.type == VariableType.CONSTANT and value != variable.default:
            raise BadRequest(f"variable {name!r} is a constant and cannot be set")
        if variable.type == VariableType.CUSTOM and value not in variable.options:
            raise BadRequest(f"variable {name!r} must be one of its options")
        if variable.type == VariableType.INTERVAL and not _INTERVAL.match(value):
            raise BadRequest(f"variable {name!r} must be an interval such as 5m or 300")
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
    stored SQL itself cannot run (the operator would have marked it invalid).
    """
    try:
        time_range = TimeRange.model_validate(
            {"from": time_from or spec.time_range.from_, "to": time_to or spec.time_range.to}
        )
    except ValidationError:
        raise BadRequest(
            "from/to must be now, now-<n><s|m|h|d|w> or an RFC 3339 time with zone"
        ) from None
    window = window_start(now, refresh_seconds(spec.refresh))
    start = panels.resolve_time(time_range.from_, window)
    end = panels.resolve_time(time_range.to, window)
    if start > end:
        raise BadRequest("from must not be after to")
    bound = _variable_values(spec, variables)
    try:
        sql = panels.single_statement(panel.sql)
        wanted = panels.query_parameters(sql)
        params = panels.parameter_values(
            wanted, variables=bound.variables, time_range=time_range, now=window
        )
    except panels.PanelError as err:
        raise PanelUnusable(str(err)) from None
    return Query(sql=sql, params=params)


def request_variables(query: Mapping[str, str]) -> dict[str, str]:
    """The ``var.<name>`` entries of a query string, by name."""
    return {k.removeprefix(VAR_PREFIX): v for k, v in query.items() if k.startswith(VAR_PREFIX)}
