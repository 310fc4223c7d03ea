"""Panel data and charts, end to end: org, tenant and dashboard through the API, the
tenant's schema provisioned on the session's ClickHouse engine (no operator runs here,
so the test provisions it and writes the Dashboard status as the operator would), then
panel queries through the clickhouse-connect adapter against the loopback endpoint."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.layout import provision
from tenantry.clickhouse.schema import TenantSchema
from tenantry_dev.loopback_server import LoopbackServer
from tests.integration.controlplane.conftest import (
    bearer,
    make_settings,
    new_org,
    serve,
    sign_up_and_login,
)
from tests.support.kube import Kube
from tests.support.wait import until

DAY = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
PER_DAY = (
    "SELECT toDate(timestamp) AS day, count() AS n FROM events"
    " WHERE event = {ev:String} AND timestamp >= {from:DateTime64(3)}"
    " AND timestamp < {to:DateTime64(3)} GROUP BY day ORDER BY day"
)
SPEC: dict[str, Any] = {
    "tenantRef": {"name": "shop"},
    "title": "Shop",
    "refresh": "5m",
    "timeRange": {"from": "now-7d", "to": "now"},
    "variables": [
        {"name": "ev", "type": "custom", "default": "click", "options": ["click", "view"]},
        {"name": "label", "type": "constant", "default": "x"},
        {"name": "step", "type": "interval", "default": "300"},
        {"name": "unit", "type": "interval", "default": "1h"},
    ],
    "panels": [
        {
            "id": "per_day",
            "title": 'Events <per> day & "more"',
            "sql": PER_DAY,
            "visualization": "bar",
        },
        {
            "id": "total",
            "title": "Total",
            "sql": "SELECT count() AS n FROM events",
            "visualization": "stat",
        },
        {"id": "broken", "title": "Broken", "sql": "SELECT nope FROM events"},
        # Interval values read as numbers: "5m" is an interval, but not a UInt32.
        {"id": "stepped", "title": "Stepped", "sql": "SELECT {step:UInt32} AS s"},
        {"id": "unit", "title": "Unit", "sql": "SELECT {unit:UInt32} AS s"},
    ],
}
RANGE = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-04T00:00:00Z"}


@pytest.fixture
async def http(
    database: str, redis_db: str, crds: Kube, loopback: LoopbackServer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database,
        redis_db,
        kube_enabled=True,
        kubeconfig=str(Path(crds.kubeconfig)),
        clickhouse_url_override=loopback.url,
    )
    async with serve(settings) as (_, client):
        yield client


def _events(database: str, chdb: ChdbClient) -> None:
    rows = []
    for day, clicks, views in ((0, 3, 1), (1, 5, 0), (2, 2, 4)):
        at = DAY + dt.timedelta(days=day, hours=12)
        rows += [
            {
                "event_id": f"00000000-0000-4000-8000-{day:04d}{i:08d}",
                "timestamp": at,
                "event": "click",
                "user_id": "u",
                "properties": "{}",
            }
            for i in range(clicks)
        ]
        rows += [
            {
                "event_id": f"00000000-0000-4000-9000-{day:04d}{i:08d}",
                "timestamp": at,
                "event": "view",
                "user_id": "u",
                "properties": "{}",
            }
            for i in range(views)
        ]
    rows.append(
        {
            "event_id": "00000000-0000-4000-a000-000000000000",
            "timestamp": DAY - dt.timedelta(days=3),
            "event": "click",
            "user_id": "u",
            "properties": "{}",
        }
    )  # outside the range
    chdb.insert(f"{database}.events", rows)


async def _setup(
    http: httpx.AsyncClient, crds: Kube, chdb: ChdbClient
) -> tuple[dict[str, str], str, str, str]:
    owner = await sign_up_and_login(http)
    org_id = await new_org(http, owner)
    h = bearer(owner)
    subscribe = f"/v1/orgs/{org_id}/billing/subscription"
    assert (await http.post(subscribe, json={"plan": "enterprise"}, headers=h)).status_code == 201
    r = await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "shop"}, headers=h)
    assert r.status_code == 201, r.text
    tenant_cr = r.json()["resource_name"]
    database = "t_" + tenant_cr.replace("-", "_")
    provision(chdb, TenantSchema(database=database, retention_days=3650))
    _events(database, chdb)
    r = await http.post(
        f"/v1/orgs/{org_id}/dashboards", json={"name": "sales", "spec": SPEC}, headers=h
    )
    assert r.status_code == 201, r.text
    dashboard = r.json()
    status = {
        "status": {
            "observedGeneration": dashboard["generation"],
            "panels": [
                {"id": "per_day", "valid": True},
                {"id": "total", "valid": True},
                {"id": "broken", "valid": False, "message": "unknown column: nope"},
                {"id": "stepped", "valid": True},
                {"id": "unit", "valid": True},
            ],
        }
    }
    crds.run(
        "patch",
        "dashboards.tenantry.io",
        dashboard["resource_name"],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )

    async def mirrored() -> dict[str, Any]:  # the status reaches the mirror through the watch
        return dict((await http.get(f"/v1/orgs/{org_id}/dashboards/sales", headers=h)).json())

    await until(mirrored, accept=lambda got: got["status"].get("panels"), what="the panels' status")
    return h, org_id, database, f"/v1/orgs/{org_id}/dashboards/sales/panels"


async def test_panel_data_variables_errors_cache_and_chart(
    http: httpx.AsyncClient,
    crds: Kube,
    chdb_client: ChdbClient,
    loopback: LoopbackServer,
    database: str,
    redis_db: str,
) -> None:
    h, org_id, ch_database, panels = await _setup(http, crds, chdb_client)

    r = await http.get(f"{panels}/per_day/data", params=RANGE, headers=h)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["columns"] == [{"name": "day", "type": "Date"}, {"name": "n", "type": "UInt64"}]
    assert first["rows"] == [["2026-03-01", 3], ["2026-03-02", 5], ["2026-03-03", 2]]
    assert first["cached"] is False
    assert first["generatedAt"].endswith("Z")

    # Variables are bound as query parameters, checked against their definitions.
    r = await http.get(f"{panels}/per_day/data", params={**RANGE, "var.ev": "view"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["2026-03-01", 1], ["2026-03-03", 4]]
    assert r.json()["cached"] is False
    for bad in (
        {"var.ev": "purchase"},  # not one of the options
        {"var.ev": "' OR 1=1 --"},
        {"var.nope": "1"},  # undeclared
        {"var.label": "y"},  # a constant
        {"from": "yesterday"},
        {"from": "2026-03-05T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
        {"limit": "5"},  # not a parameter of this route
    ):
        r = await http.get(f"{panels}/per_day/data", params={**RANGE, **bad}, headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_input"

    # The operator's verdict decides: an invalid panel is a 409 with its message.
    r = await http.get(f"{panels}/broken/data", headers=h)
    assert r.status_code == 409
    assert "unknown column: nope" in r.json()["error"]["message"]
    assert (await http.get(f"{panels}/ghost/data", headers=h)).status_code == 404
    missing = f"/v1/orgs/{org_id}/dashboards/nothing/panels/total/data"
    assert (await http.get(missing, headers=h)).status_code == 404

    # Another organisation's member sees nothing, not even that the dashboard exists.
    stranger = await sign_up_and_login(http)
    await new_org(http, stranger)
    for suffix in ("data", "chart.svg"):
        r = await http.get(f"{panels}/per_day/{suffix}", params=RANGE, headers=bearer(stranger))
        assert r.status_code == 404
        assert r.json()["error"]["message"] == "organisation not found"

    # Charts: well-formed SVG, titles escaped, built from the same (cached) data.
    r = await http.get(f"{panels}/per_day/chart.svg", params=RANGE, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.text)  # noqa: S314 - our own server's output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert 'Events <per> day & "more"' in "".join(root.itertext())
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 1 + 3  # background + bars
    assert "<script" not in r.text
    assert "http://" not in r.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    r = await http.get(f"{panels}/total/chart.svg", headers=h)
    assert r.status_code == 200, r.text
    total = ET.fromstring(r.text)  # noqa: S314 - our own server's output
    assert "16" in "".join(total.itertext())  # 10 clicks, 5 views, 1 earlier

    # A cache hit never reaches ClickHouse: with the table gone, the answer still comes.
    chdb_client.command(f"DROP TABLE {ch_database}.events")
    r = await http.get(f"{panels}/per_day/data", params=RANGE, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["cached"] is True
    assert r.json()["rows"] == first["rows"]
    assert r.json()["generatedAt"] == first["generatedAt"]
    # ... while a query that misses the cache now fails as the panel's problem.
    r = await http.get(
        f"{panels}/per_day/data",
        params={**RANGE, "var.ev": "click", "to": "2026-03-03T00:00:00Z"},
        headers=h,
    )
    assert r.status_code == 409, r.text

    # ClickHouse unreachable: 503 (a second app on the same database, pointed nowhere).
    settings = make_settings(
        database,
        redis_db,
        kube_enabled=True,
        kubeconfig=str(Path(crds.kubeconfig)),
        clickhouse_url_override="http://127.0.0.1:9/",
    )
    async with serve(settings) as (_, other):
        r = await other.get(
            f"{panels}/per_day/data",
            params={**RANGE, "var.ev": "view", "from": "2026-03-02T00:00:00Z"},
            headers=h,
        )
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"

    # Billing meters the queries ClickHouse ran (3 misses), not cache hits or failures.
    usage = await http.get(f"/v1/orgs/{org_id}/billing/usage", headers=h)
    assert usage.status_code == 200, usage.text
    metrics = {m["metric"]: m for m in usage.json()["metrics"]}
    assert metrics["dashboard_queries"]["quantity"] == 3


async def test_every_bad_parameter_is_a_422_naming_it(
    http: httpx.AsyncClient, crds: Kube, chdb_client: ChdbClient
) -> None:
    """Impossible dates, out-of-range years, extreme offsets (500s before), values the
    panel's parameter type cannot hold: each a 422 in the one error shape, naming the
    parameter; a stored value that cannot be used is the dashboard's problem (409)."""
    h, org_id, _, panels = await _setup(http, crds, chdb_client)

    def named(r: httpx.Response, name: str) -> None:
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["requestId"] == r.headers["x-request-id"]
        locs = [d["loc"] for d in error.get("details", [])]
        assert error["message"].startswith(f"{name}: ") or ["query", name] in locs, r.text

    bad_times = [
        "2026-02-30T00:00:00Z",
        "2026-03-01T24:00:00Z",
        "2026-03-01T00:00:00+24:00",
        "2026-03-01T00:00:00-99:99",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "now-99999w",
        "now-21000d",
        "yesterday",
        "",
        "2026-03-01T00:00:00Z\n",
        "x" * 41,
    ]
    for suffix in ("data", "chart.svg"):
        for name in ("from", "to"):
            for text in bad_times:
                query = {**RANGE, name: text}
                r = await http.get(f"{panels}/per_day/{suffix}", params=query, headers=h)
                named(r, name)
    for bad, name in (
        ({"var.ev": "purchase"}, "var.ev"),
        ({"var.nope": "1"}, "var.nope"),
        ({"var.label": "y"}, "var.label"),
        ({"var.step": "5 minutes"}, "var.step"),
    ):
        r = await http.get(f"{panels}/per_day/data", params={**RANGE, **bad}, headers=h)
        named(r, name)

    # A value of the right form that the panel's {step:UInt32} cannot hold: ClickHouse
    # refuses it, and the refusal is the request's, named.
    r = await http.get(f"{panels}/stepped/data", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[300]]
    r = await http.get(f"{panels}/stepped/data", params={"var.step": "5m"}, headers=h)
    named(r, "var.step")
    assert "UInt32" in r.json()["error"]["message"]
    # The same refusal of the dashboard's own default is the panel's problem.
    r = await http.get(f"{panels}/unit/data", headers=h)
    assert r.status_code == 409, r.text
    r = await http.get(f"{panels}/unit/data", params={"var.unit": "60"}, headers=h)
    assert r.status_code == 200, r.text

    # Dashboards whose own time range no query could use are refused when written,
    # naming the field.
    for time_range in (
        {"from": "2026-02-30T00:00:00Z", "to": "now"},
        {"from": "now-99999w", "to": "now"},
        {"from": "now", "to": "2200-01-01T00:00:00Z"},
        {"from": "now", "to": "now-1h"},
    ):
        spec = {**SPEC, "timeRange": time_range}
        for method, url, body in (
            ("POST", f"/v1/orgs/{org_id}/dashboards", {"name": "other", "spec": spec}),
            ("PUT", f"/v1/orgs/{org_id}/dashboards/sales", {"spec": spec}),
        ):
            r = await http.request(method, url, json=body, headers=h)
            assert r.status_code == 422, (time_range, r.text)
            # Named by the model's own check (its location) or by the range rule (its text).
            detail = r.json()["error"]["details"][0]
            assert "timeRange" in detail["loc"] or "timeRange." in detail["msg"], r.text
