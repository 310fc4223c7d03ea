"""Which values a panel query runs with (pure): variables checked against their
definitions, times resolved on refresh-aligned windows, the operator's status obeyed."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from tenantry_operator.model import TenantModel

from controlplane.dashboards import params, repository
from tenantry.api.dashboard import DashboardSpec

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
        {"time_from": "yesterday"},
        {"time_from": "2026-03-01T00:00:00"},  # no zone
        {"time_from": "now", "time_to": "now-1h"},
    ],
)
def test_bad_requests(kwargs: dict[str, Any]) -> None:
    with pytest.raises(params.BadRequest):
        _build(**kwargs)


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
    assert repository.tenant_database("acme-my-shop") == TenantModel.database.__get__(model)
    url = repository.clickhouse_url("acme-shop", "p@ss/word")
    assert url == "http://reader:p%40ss%2Fword@clickhouse.tenant-acme-shop.svc.cluster.local:8123/"
    limits = repository.Limits(max_execution_seconds=30, max_result_rows=100, readonly=2)
    assert "max_execution_time = 30" in limits.clause()
    assert "readonly = 2" in limits.clause()
