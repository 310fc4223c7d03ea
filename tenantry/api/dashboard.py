"""The ``Dashboard`` custom resource (tenantry.io/v1alpha1): saved SQL panels on a tenant.

The operator validates every panel's SQL against the tenant's schema and creates
materialized views for panels that ask for one; the control plane serves panel data.
Structural rules (unique panel ids, identifiers, read-only SQL shape) are enforced by the
API server so a bad Dashboard never reaches the operator.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from tenantry.api.common import (
    DNS_LABEL_PATTERN,
    Condition,
    CRDModel,
    cel,
    cel_string,
    k8s_extra,
)

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# "now", "now-15m", "now-7d" or an RFC 3339 instant.
TIME_PATTERN = (
    r"^(now(-[0-9]{1,5}[smhdw])?|"
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
)
DURATION_PATTERN = r"^[1-9][0-9]{0,4}(s|m|h)$"

# Panels bind the range to {from:DateTime}/{to:DateTime}: ClickHouse's DateTime holds
# 1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC. A time outside it (year 1 or 9999, an
# offset that pushes it over an edge, "now-99999w") is refused, not left to fail later.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2106, 2, 7, 6, 28, 15, tzinfo=dt.UTC)
LOOKBACK_YEARS = 50
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_LOOKBACK_SECONDS = LOOKBACK_YEARS * 365 * 86400
_RELATIVE = re.compile(r"^now-([0-9]{1,5})([smhdw])$")
TIME_BOUNDS = (
    "times must lie between 1970-01-01T00:00:00Z and 2106-02-07T06:28:15Z (what a "
    f"ClickHouse DateTime holds) and relative times reach back at most {LOOKBACK_YEARS} "
    "years"
)


def check_time(text: str) -> str:
    """``text`` when it is a time panels can use (see TIME_BOUNDS); else ValueError."""
    relative = _RELATIVE.match(text)
    if relative:
        seconds = int(relative[1]) * _UNIT_SECONDS[relative[2]]
        if seconds > MAX_LOOKBACK_SECONDS:
            raise ValueError(f"{text!r} reaches back more than {LOOKBACK_YEARS} years")
        return text
    if text == "now":
        return text
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"{text!r} is not a valid RFC 3339 time: {err}") from err
    try:
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        inside = EARLIEST <= when.astimezone(dt.UTC) <= LATEST
    except OverflowError:  # year 1 minus an offset, year 9999 plus one
        inside = False
    if not inside:
        raise ValueError(f"{text!r} is out of range: {TIME_BOUNDS}")
    return text


_SECONDS_CEL = "{" + ", ".join(f"'{u}': {s}" for u, s in _UNIT_SECONDS.items()) + "}"
TIME_RULES = [
    cel(
        "!self.matches('^[0-9]') || "
        f"(timestamp(self) >= timestamp('{EARLIEST:%Y-%m-%dT%H:%M:%SZ}') && "
        f"timestamp(self) <= timestamp('{LATEST:%Y-%m-%dT%H:%M:%SZ}'))",
        f"must be a valid date and time; {TIME_BOUNDS}",
        message_expression=cel_string(f"must be a valid date and time; {TIME_BOUNDS}; got ")
        + " + self",
    ),
    cel(
        "!self.matches('^now-[0-9]+[smhdw]$') || "
        f"int(self.substring(4, self.size() - 1)) * {_SECONDS_CEL}[self.substring(self.size() - 1)]"
        f" <= {MAX_LOOKBACK_SECONDS}",
        f"relative times reach back at most {LOOKBACK_YEARS} years",
        message_expression=cel_string(
            f"relative times reach back at most {LOOKBACK_YEARS} years; got "
        )
        + " + self",
    ),
]
TimeValue = Annotated[
    str,
    Field(pattern=TIME_PATTERN, max_length=40, json_schema_extra=k8s_extra(validations=TIME_RULES)),
    AfterValidator(check_time),
]


class Visualization(StrEnum):
    TABLE = "table"
    LINE = "line"
    BAR = "bar"
    AREA = "area"
    PIE = "pie"
    STAT = "stat"


class VariableType(StrEnum):
    CONSTANT = "constant"
    CUSTOM = "custom"
    INTERVAL = "interval"


class TenantRef(CRDModel):
    """The Tenant whose ClickHouse the panels query."""

    name: Annotated[str, Field(min_length=1, max_length=50, pattern=DNS_LABEL_PATTERN)]
    """Name of the Tenant (cluster-scoped)."""


class TimeRange(CRDModel):
    """Default time window of the dashboard."""

    from_: Annotated[TimeValue, Field(alias="from")] = "now-24h"
    """Start: "now", "now-<n><s|m|h|d|w>" (at most 50 years back) or an RFC 3339 time
    from 1970 to 2106-02-07 (what a ClickHouse DateTime holds)."""
    to: TimeValue = "now"
    """End: same forms as from."""


class Variable(CRDModel):
    """A template variable that panel SQL references as {name:Type} query parameters."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "self.type != 'custom' || (has(self.options) && size(self.options) > 0)",
                    "a custom variable needs at least one entry in options",
                    field_path=".options",
                ),
                cel(
                    "!has(self.options) || size(self.options) == 0 || self.default in self.options",
                    "default must be one of options",
                    field_path=".default",
                ),
            ]
        )
    )

    name: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
    """Identifier: lower-case letters, digits and '_', starting with a letter."""
    type: VariableType = VariableType.CONSTANT
    """constant, custom (choose from options) or interval."""
    label: Annotated[str, Field(max_length=100)] | None = None
    """Label shown in the UI."""
    default: Annotated[str, Field(max_length=1000)] = ""
    """Value used when a request gives none."""
    options: Annotated[
        list[Annotated[str, Field(max_length=1000)]], Field(default_factory=list, max_length=200)
    ]
    """Allowed values of a custom variable."""


class Panel(CRDModel):
    """One saved query and how to draw it."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "self.sql.trim().lowerAscii().startsWith('select') || "
                    "self.sql.trim().lowerAscii().startsWith('with')",
                    "sql must be a read-only query starting with SELECT or WITH",
                    field_path=".sql",
                ),
                cel(
                    "!self.sql.contains(';')",
                    "sql must be a single statement without ';'",
                    field_path=".sql",
                ),
            ]
        )
    )

    id: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
    """Identifier unique within the dashboard (also names its materialized view)."""
    title: Annotated[str, Field(min_length=1, max_length=200)]
    """Panel heading."""
    sql: Annotated[str, Field(min_length=1, max_length=20000)]
    """A single ClickHouse SELECT over the tenant's tables; variables as {name:Type}."""
    visualization: Visualization = Visualization.TABLE
    """table, line, bar, area, pie or stat."""
    materialize: bool = False
    """Keep the result in a materialized view that ClickHouse updates on insert."""


class DashboardSpec(CRDModel):
    """Saved panels on one tenant's data."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "self.tenantRef == oldSelf.tenantRef",
                    "tenantRef is immutable: create a new Dashboard for another tenant",
                    field_path=".tenantRef",
                ),
            ]
        )
    )

    tenant_ref: TenantRef
    """The Tenant this dashboard reads. Immutable."""
    title: Annotated[str, Field(min_length=1, max_length=200)]
    """Dashboard title."""
    description: Annotated[str, Field(max_length=2000)] = ""
    """Free text."""
    time_range: TimeRange = Field(default_factory=TimeRange)
    """Default time window."""
    refresh: Annotated[str, Field(pattern=DURATION_PATTERN)] = "1m"
    """How often data refreshes, and how long panel results are cached, e.g. 30s, 5m, 1h."""
    variables: Annotated[
        list[Variable],
        Field(
            default_factory=list,
            max_length=20,
            json_schema_extra=k8s_extra(list_type="map", list_map_keys=["name"]),
        ),
    ]
    """Template variables (names unique)."""
    panels: Annotated[
        list[Panel],
        Field(
            min_length=1,
            max_length=50,
            json_schema_extra=k8s_extra(list_type="map", list_map_keys=["id"]),
        ),
    ]
    """1 to 50 panels (ids unique)."""


class PanelStatus(CRDModel):
    """Validation result of one panel."""

    id: str
    """Panel id."""
    valid: bool
    """Whether the SQL passed validation."""
    message: str = ""
    """Why it is invalid, if it is."""
    materialized_view: str | None = None
    """Name of the materialized view, when materialized."""


class DashboardStatus(CRDModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = None
    """The .metadata.generation last reconciled."""
    conditions: Annotated[
        list[Condition],
        Field(
            default_factory=list,
            json_schema_extra=k8s_extra(list_type="map", list_map_keys=["type"]),
        ),
    ]
    """Ready and Valid."""
    panels: Annotated[
        list[PanelStatus],
        Field(
            default_factory=list,
            json_schema_extra=k8s_extra(list_type="map", list_map_keys=["id"]),
        ),
    ]
    """Per-panel validation results."""
    panels_valid: str | None = None
    """valid/total, for printing."""
