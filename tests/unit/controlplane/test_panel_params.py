"""Which values a panel query runs with (pure): variables checked against their
definitions, times resolved on refresh-aligned windows, the operator's status obeyed."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tenantry_operator.model import TenantModel

from controlplane.dashboards import params, repository
from tenantry import contract
from tenantry.api.dashboard import EARLIEST, LATEST, TIME_PATTERN, DashboardSpec, TimeRange

NOW = dt.datetime(2026, 3, 10, 12, 34, 56, tzinfo=dt.UTC)
SPEC = DashboardSpec.model_validate(
    {
        "tenantRef": {"name": "acme-shop"},
        "title": "T",
        "refresh": "5m",
        "variables": [
            {"name": "ev", "type": "custom", "default": "click", "options": ["click", "view"]},
            {"name": "c", "type": "constant", "default": "k"},
            {"name": "step", "type": "interval", "default": "1h"},
        ],
        "panels": [
            {
                "id": "p",
                "title": "P",
                "sql": "SELECT count() FROM events WHERE event = {ev:String}"
                " AND timestamp >= {from:DateTime} AND timestamp < {to:DateTime}",
            },
            {"id": "q", "title": "Q", "sql": "SELECT {nope:String}"},
        ],
    }
)


def _build(panel: str = "p", **kwargs: Any) -> params.Query:
    found = params.find_panel(SPEC, panel)
    assert found is not None
    return params.build_query(
        SPEC,
        found,
        time_from=kwargs.get("time_from"),
        time_to=kwargs.get("time_to"),
        variables=kwargs.get("variables", {}),
        now=kwargs.get("now", NOW),
    )


def test_defaults_and_refresh_aligned_times() -> None:
    query = _build()
    assert query.params == {
        "ev": "click",
        "from": "2026-03-09 12:30:00",  # now-24h on the 5-minute window of NOW
        "to": "2026-03-10 12:30:00",
    }
    later = _build(now=NOW + dt.timedelta(seconds=3))
    assert later.fingerprint() == query.fingerprint()  # same window: same cache entry
    next_window = _build(now=NOW + dt.timedelta(minutes=5))
    assert next_window.fingerprint() != query.fingerprint()


def test_request_values() -> None:
    query = _build(
        variables={"ev": "view", "c": "k"},
        time_from="2026-03-01T00:00:00Z",
        time_to="2026-03-02T00:00:00+01:00",
    )
    assert query.params == {
        "ev": "view",
        "from": "2026-03-01 00:00:00",
        "to": "2026-03-01 23:00:00",
    }
    assert query.fingerprint() != _build().fingerprint()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variables": {"ev": "buy"}},
        {"variables": {"ev": "click' OR 1=1"}},
        {"variables": {"unknown": "1"}},
        {"variables": {"c": "other"}},
        {"variables": {"step": "1 hour; DROP"}},
        {"variables": {"ev": "x" * 2000}},
        {"variables": {"step": "5m\n"}},
        {"time_from": "yesterday"},
        {"time_from": "2026-03-01T00:00:00"},  # no zone
        {"time_from": "now\n"},
        {"time_from": "now", "time_to": "now-1h"},
    ],
)
def test_bad_requests(kwargs: dict[str, Any]) -> None:
    with pytest.raises(params.BadRequest):
        _build(**kwargs)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"ev": "buy"}, "var.ev: "),
        ({"unknown": "1"}, "var.unknown: "),
        ({"c": "other"}, "var.c: "),
        ({"step": "1 hour"}, "var.step: "),
        ({"ev": "x" * 2000}, "var.ev: "),
    ],
)
def test_a_refused_variable_is_named(variables: dict[str, str], named: str) -> None:
    with pytest.raises(params.BadRequest) as refused:
        _build(variables=variables)
    assert str(refused.value).startswith(named)


BAD_TIMES = [
    # impossible dates and clock times
    "2026-02-30T00:00:00Z",
    "2025-02-29T00:00:00Z",  # not a leap year
    "2026-04-31T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-03-00T00:00:00Z",
    "2026-03-01T24:00:00Z",
    "2026-03-01T23:60:00Z",
    "2026-03-01T23:59:60Z",  # no leap seconds
    # zone offsets that are not offsets
    "2026-03-01T00:00:00+24:00",
    "2026-03-01T00:00:00+23:60",
    "2026-03-01T00:00:00-99:99",
    "2026-03-01T00:00:00+00:99",  # Python would read it as +01:39
    # real times a panel cannot query
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+23:59",  # before year 1 in UTC
    "9999-12-31T23:59:59-23:59",  # after year 9999 in UTC
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:59:59+01:00",
    "2106-02-07T06:28:16Z",
    "2200-01-01T00:00:00Z",
    "now-99999w",
    "now-99999d",
    "now-21000d",  # 1968
]


@pytest.mark.parametrize("text", BAD_TIMES)
@pytest.mark.parametrize("name", ["from", "to"])
def test_times_that_name_no_usable_instant_are_refused_and_named(name: str, text: str) -> None:
    """The class of the 500s: every bad time is a BadRequest naming its parameter."""
    times = {"time_from": "2026-03-01T00:00:00Z", "time_to": "2026-03-02T00:00:00Z"}
    times["time_" + name] = text
    with pytest.raises(params.BadRequest) as refused:
        _build(**times)
    assert str(refused.value).startswith(f"{name}: "), refused.value


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("1970-01-01T00:00:00Z", EARLIEST),
        ("1970-01-01T01:00:00+01:00", EARLIEST),
        ("2106-02-07T06:28:15Z", LATEST),
        ("2024-02-29T12:00:00.123456789-23:59", dt.datetime(2024, 3, 1, 11, 59, 0, 123456, dt.UTC)),
        ("now-2607w", NOW - dt.timedelta(weeks=2607)),  # LOOKBACK_YEARS, in whole weeks
    ],
)
def test_the_edges_of_the_range_are_usable(text: str, at: dt.datetime) -> None:
    assert params.parse_time("from", text, NOW) == at


@settings(max_examples=400, deadline=None, derandomize=True)
@given(text=st.from_regex(TIME_PATTERN, fullmatch=True) | st.text(max_size=40))
def test_any_time_text_is_a_time_in_range_or_a_named_refusal(text: str) -> None:
    """Whatever matches the Dashboard's pattern (random digits in every field: impossible
    dates, any offset, any year) or doesn't: an instant in range, or BadRequest."""
    refused: params.BadRequest | None = None
    try:
        at = params.parse_time("from", text, NOW)
    except params.BadRequest as err:
        refused = err
    if refused is not None:
        assert str(refused).startswith("from: ")
    else:
        assert EARLIEST <= at <= LATEST
        assert at.tzinfo is not None


def _spec_with_range(time_from: str, time_to: str = "now") -> DashboardSpec:
    """A spec holding this range unvalidated: one stored before the CRD refused such
    values (the API server keeps what an older schema accepted)."""
    time_range = TimeRange.model_construct(from_=time_from, to=time_to)
    return SPEC.model_copy(update={"time_range": time_range})


def test_an_unusable_default_range_is_the_dashboards_problem_not_the_requests() -> None:
    for spec in (_spec_with_range("2026-02-30T00:00:00Z"), _spec_with_range("now", "now-1h")):
        panel = params.find_panel(spec, "p")
        assert panel is not None
        with pytest.raises(params.PanelUnusable, match="default timeRange"):
            params.build_query(spec, panel, time_from=None, time_to=None, variables={}, now=NOW)
        # A request that gives both ends does not need the default.
        query = params.build_query(
            spec,
            panel,
            time_from="2026-03-01T00:00:00Z",
            time_to="2026-03-02T00:00:00Z",
            variables={},
            now=NOW,
        )
        assert query.params["from"] == "2026-03-01 00:00:00"
    with pytest.raises(params.BadRequest, match=r"^timeRange\.from: "):
        params.check_time_range(_spec_with_range("2026-02-30T00:00:00Z").time_range, NOW)
    with pytest.raises(params.BadRequest, match=r"^timeRange\.from must not be after"):
        params.check_time_range(_spec_with_range("now", "now-1h").time_range, NOW)


def test_sources_name_the_request_parameter_behind_each_value() -> None:
    """What a ClickHouse error about a parameter's value is blamed on: request values are
    the request's (named), defaults the panel's."""
    assert _build().sources == {}
    query = _build(variables={"ev": "view"}, time_to="2026-03-10T00:00:00Z")
    assert query.sources == {"ev": "var.ev", "to": "to"}
    # A declared variable named like a time parameter wins, as in the operator.
    spec = SPEC.model_copy(
        update={
            "variables": [
                *SPEC.variables,
                *DashboardSpec.model_validate(
                    {
                        "tenantRef": {"name": "x"},
                        "title": "x",
                        "variables": [
                            {"name": "to", "type": "custom", "default": "a", "options": ["a"]}
                        ],
                        "panels": [{"id": "x", "title": "x", "sql": "SELECT 1"}],
                    }
                ).variables,
            ]
        }
    )
    panel = params.find_panel(spec, "p")
    assert panel is not None
    query = params.build_query(
        spec, panel, time_from=None, time_to="2026-03-10T00:00:00Z", variables={}, now=NOW
    )
    assert query.params["to"] == "a"
    assert query.sources == {}


def test_stored_sql_that_cannot_run_is_the_panels_problem() -> None:
    with pytest.raises(params.PanelUnusable, match="unknown variable"):
        _build("q")


def test_status_must_vouch_for_the_current_generation() -> None:
    ok = {"observedGeneration": 2, "panels": [{"id": "p", "valid": True}]}
    assert params.panel_status_problem(ok, "p", generation=2) is None
    assert "not been validated" in str(params.panel_status_problem(ok, "p", generation=3))
    assert "not been validated" in str(params.panel_status_problem({}, "p", generation=1))
    assert "not been validated" in str(params.panel_status_problem(ok, "x", generation=2))
    bad = {"observedGeneration": 1, "panels": [{"id": "p", "valid": False, "message": "boom"}]}
    assert params.panel_status_problem(bad, "p", generation=1) == "panel p is invalid: boom"


def test_helpers() -> None:
    assert params.refresh_seconds("30s") == 30
    assert params.refresh_seconds("5m") == 300
    assert params.refresh_seconds("1h") == 3600
    with pytest.raises(ValueError, match="refresh"):
        params.refresh_seconds("1d")
    assert params.request_variables({"var.a": "1", "from": "now", "var.b": ""}) == {
        "a": "1",
        "b": "",
    }
    # The operator's rule (TenantModel.database): t_<Tenant name> with '-' as '_'.
    model: Any = SimpleNamespace(name="acme-my-shop")
    assert contract.tenant_database("acme-my-shop") == TenantModel.database.__get__(model)
    url = repository.clickhouse_url("acme-shop", "p@ss/word")
    assert url == "http://reader:p%40ss%2Fword@clickhouse.tenant-acme-shop.svc.cluster.local:8123/"
    limits = repository.Limits(max_execution_seconds=30, max_result_rows=100, readonly=2)
    assert "max_execution_time = 30" in limits.clause()
    assert "readonly = 2" in limits.clause()


EDGE_TIMES = [
    "now-2607w",
    "now-2608w",
    "now-2800w",
    f"now-{50 * 365}d",
    f"now-{50 * 365 + 1}d",
    "now-99999s",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:59:59+01:00",
    "2106-02-07T06:28:15Z",
    "2106-02-07T06:28:16Z",
]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(text=st.from_regex(TIME_PATTERN, fullmatch=True) | st.sampled_from(EDGE_TIMES))
def test_a_request_time_is_usable_exactly_when_a_dashboard_could_store_it(text: str) -> None:
    """The control plane's rule for from/to is the Dashboard model's (built from it, not a
    copy): what one refuses, the other refuses, naming the parameter."""
    try:
        TimeRange.model_validate({"from": text, "to": "now"})
        stored = True
    except ValidationError:
        stored = False
    refused: params.BadRequest | None = None
    try:
        params.parse_time("from", text, NOW)
    except params.BadRequest as err:
        refused = err
    assert (refused is None) == stored, (text, refused)
    assert refused is None or str(refused).startswith("from: ")


def test_a_lookback_beyond_the_dashboards_names_the_parameter_in_a_request() -> None:
    """Found by the fuzz test: "now-2827w" passed the request check, then failed the
    model's, and the 422 named no parameter."""
    with pytest.raises(params.BadRequest, match=r"^from: 'now-2827w' reaches back more than"):
        _build(time_from="now-2827w", time_to="1978-05-14T08:24:00-07:41")
