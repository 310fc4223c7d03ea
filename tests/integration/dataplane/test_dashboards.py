"""Dashboard reconciliation on the real engine: validation messages and materialized views."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tenantry_operator.dataplane import connect, dashboards, schema_step
from tenantry_operator.model import TenantModel

from tenantry import clickhouse
from tenantry.api.dashboard import DashboardSpec
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseClient
from tenantry.dashboards import panels
from tests.integration.clickhouse.events import events
from tests.integration.dataplane.conftest import tenant_client

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def spec_of(tenant: TenantModel, *panel_list: dict[str, Any]) -> DashboardSpec:
    return DashboardSpec.model_validate(
        {
            "tenantRef": {"name": tenant.name},
            "title": "Traffic",
            "timeRange": {"from": "now-7d", "to": "now"},
            "variables": [
                {"name": "kind", "type": "custom", "default": "view", "options": ["view", "signup"]}
            ],
            "panels": list(panel_list),
        }
    )


def panel(pid: str, sql: str, *, materialize: bool = False) -> dict[str, Any]:
    return {"id": pid, "title": pid, "sql": sql, "materialize": materialize}


@pytest.fixture
async def client(
    chdb_client: ChdbClient, tenant: TenantModel, chdb_url: str
) -> AsyncIterator[ClickHouseClient]:
    """The tenant provisioned, and a client on its database (as the operator opens it)."""
    await schema_step.ensure_schema(chdb_client, tenant)
    scoped = tenant_client(chdb_url, tenant)
    yield scoped
    scoped.close()


def _views(chdb_client: ChdbClient, tenant: TenantModel) -> dict[str, str]:
    rows = chdb_client.query(
        "SELECT name, comment FROM system.tables "
        "WHERE database = {db:String} AND engine = 'MaterializedView' ORDER BY name",
        {"db": connect.database_name(tenant)},
    )
    return {str(r["name"]): str(r["comment"]) for r in rows}


async def test_valid_panels_with_variables_and_time_range(
    client: ClickHouseClient, tenant: TenantModel
) -> None:
    spec = spec_of(
        tenant,
        panel("per_day", "SELECT toDate(timestamp) AS d, count() AS n FROM events GROUP BY d"),
        panel(
            "filtered",
            "SELECT uniq(user_id) AS users FROM events WHERE event = {kind:String} "
            "AND timestamp >= {from:DateTime} AND timestamp < {to:DateTime};",
        ),
        panel("numbers", "SELECT number FROM numbers(3) UNION ALL SELECT 1"),
    )
    outcome = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="traffic", spec=spec, previous=[]
    )
    assert outcome.panels == [
        {"id": p, "valid": True, "message": ""} for p in ("per_day", "filtered", "numbers")
    ]
    status = outcome.status(generation=3, previous=None)
    assert status["panelsValid"] == "3/3"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Valid"]["status"] == "True"
    assert conditions["Ready"]["observedGeneration"] == 3
    assert outcome.notices == []


INVALID = [
    (
        "unknown_column",
        "SELECT nope FROM events",
        "unknown column: Unknown expression identifier `nope`",
    ),
    ("unknown_table", "SELECT count() FROM evnts", "unknown table"),
    ("unknown_function", "SELECT countt() FROM events", "unknown function"),
    ("syntax", "SELECT count(\nFROM events WHERE", "syntax error at line 2"),
    (
        "insert",
        "INSERT INTO events (event) VALUES ('x')",
        "an INSERT; a panel must be a read-only SELECT",
    ),
    ("alter", "ALTER TABLE events DELETE WHERE 1", "an ALTER"),
    ("drop", "DROP TABLE events", "a DROP"),
    ("system", "SYSTEM DROP DNS CACHE", "SYSTEM"),
    ("two_statements", "SELECT 1; DROP TABLE events", "more than one statement"),
    ("url", "SELECT * FROM url('http://127.0.0.1:1/x', CSV, 'a String')", "table function url()"),
    ("file", "SELECT * FROM file('/etc/passwd', LineAsString)", "table function file()"),
    ("s3", "SELECT * FROM s3('http://127.0.0.1:1/b/k', CSV)", "table function s3()"),
    ("remote", "SELECT * FROM remote('127.0.0.1', system.one)", "table function remote()"),
    ("other_db", "SELECT * FROM system.tables", "system.tables is outside the tenant's database"),
    ("file_scalar", "SELECT file('/etc/passwd') AS f", "function file() reads outside"),
    ("dictionary", "SELECT dictGetString('d', 'a', toUInt64(1)) AS v", "dictGetString()"),
    ("other_tenant", "SELECT count() FROM t_other.events", "t_other.events is outside"),
    (
        "scalar_url",
        "SELECT (SELECT count() FROM url('http://127.0.0.1:1/', CSV, 'a String'))",
        "url()",
    ),
    ("in_table", "SELECT count() FROM events WHERE user_id IN system.users", "system.users is"),
    ("outfile", "SELECT 1 INTO OUTFILE '/tmp/x.csv'", "INTO OUTFILE"),
    ("format", "SELECT 1 FORMAT JSON", "FORMAT is not allowed"),
    ("settings", "SELECT 1 SETTINGS max_threads = 64", "SETTINGS are not allowed"),
    (
        "unknown_var",
        "SELECT count() FROM events WHERE event = {plan:String}",
        "unknown variable {plan:String}",
    ),
    ("not_grouped", "SELECT event, count() FROM events", "neither aggregated nor in GROUP BY"),
]


async def test_invalid_panels_say_why(client: ClickHouseClient, tenant: TenantModel) -> None:
    spec = spec_of(tenant, *(panel(pid, sql) for pid, sql, _ in INVALID))
    outcome = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="broken", spec=spec, previous=[]
    )
    by_id = {p["id"]: p for p in outcome.panels}
    for pid, _, expected in INVALID:
        assert not by_id[pid]["valid"], pid
        assert expected in by_id[pid]["message"], (pid, by_id[pid]["message"])
        assert "Code:" not in by_id[pid]["message"], "engine noise is trimmed"
    status = outcome.status(generation=1, previous=None)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Valid"]["status"] == "False"
    assert conditions["Valid"]["reason"] == "InvalidPanels"
    assert conditions["Ready"]["status"] == "False"
    assert status["panelsValid"] == f"0/{len(INVALID)}"
    assert len([n for n in outcome.notices if n.reason == "InvalidPanel"]) == len(INVALID)
    # The same invalid panels again: no new warnings, conditions keep their time.
    again = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="broken", spec=spec, previous=outcome.panels
    )
    assert again.notices == []
    assert again.status(generation=1, previous=status)["conditions"] == status["conditions"]


async def test_materialized_view_lifecycle(
    chdb_client: ChdbClient, client: ClickHouseClient, tenant: TenantModel
) -> None:
    db = connect.database_name(tenant)
    chdb_client.insert(f"{db}.events", events(10))  # before the view: POPULATE picks them up
    counts = "SELECT event, count() AS n FROM events GROUP BY event"
    spec = spec_of(tenant, panel("by_event", counts, materialize=True), panel("plain", counts))
    first = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="web-v2", spec=spec, previous=[]
    )
    view = "mv_web_v2_by_event"
    assert first.views_created == [view]
    assert first.panels[0] == {
        "id": "by_event",
        "valid": True,
        "message": "",
        "materializedView": view,
    }
    assert "materializedView" not in first.panels[1]
    assert [n.reason for n in first.notices] == ["ViewCreated"]
    owner = panels.parse_view_comment(_views(chdb_client, tenant)[view])
    assert owner == panels.ViewOwner("web-v2", "by_event", panels.sql_hash(counts))

    chdb_client.insert(f"{db}.events", events(6, start=NOW - dt.timedelta(days=1)))
    rows = chdb_client.query(
        f"SELECT event, sum(n) AS n FROM {db}.{view} GROUP BY event ORDER BY event"  # noqa: S608 - generated test names
    )
    assert rows == [{"event": "signup", "n": 8}, {"event": "view", "n": 8}]

    unchanged = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="web-v2", spec=spec, previous=first.panels
    )
    assert (unchanged.views_created, unchanged.views_dropped, unchanged.notices) == ([], [], [])

    changed_sql = "SELECT user_id, count() AS n FROM events GROUP BY user_id"
    spec2 = spec_of(tenant, panel("by_event", changed_sql, materialize=True))
    second = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="web-v2", spec=spec2, previous=first.panels
    )
    assert (second.views_dropped, second.views_created) == ([view], [view])
    assert [n.reason for n in second.notices] == ["ViewRecreated"]
    assert panels.parse_view_comment(_views(chdb_client, tenant)[view]) == panels.ViewOwner(
        "web-v2", "by_event", panels.sql_hash(changed_sql)
    )
    total = chdb_client.query(f"SELECT sum(n) AS n FROM {db}.{view}")  # noqa: S608 - generated test names
    assert total == [{"n": 16}], "the recreated view was populated from the events already there"

    typo = spec_of(tenant, panel("by_event", "SELECT user_idd FROM events", materialize=True))
    broken = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="web-v2", spec=typo, previous=second.panels
    )
    assert not broken.panels[0]["valid"]
    assert broken.panels[0]["materializedView"] == view
    assert f"view {view} keeps the last valid SQL" in broken.panels[0]["message"]
    assert (broken.views_created, broken.views_dropped) == ([], [])

    spec3 = spec_of(tenant, panel("by_event", changed_sql))
    third = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="web-v2", spec=spec3, previous=second.panels
    )
    assert third.views_dropped == [view]
    assert "materializedView" not in third.panels[0]
    assert view not in _views(chdb_client, tenant)


async def test_views_of_other_dashboards_are_left_alone(
    chdb_client: ChdbClient, client: ClickHouseClient, tenant: TenantModel
) -> None:
    sql = "SELECT event, count() AS n FROM events GROUP BY event"
    # "web" and "web-v2" share the prefix mv_web_; each keeps its own views.
    await dashboards.reconcile_dashboard(
        client,
        tenant=tenant,
        name="web-v2",
        spec=spec_of(tenant, panel("a", sql, materialize=True)),
        previous=[],
    )
    await dashboards.reconcile_dashboard(
        client,
        tenant=tenant,
        name="web",
        spec=spec_of(tenant, panel("v2_b", sql, materialize=True)),
        previous=[],
    )
    # 'web' panel 'v2_a' would be named mv_web_v2_a, which belongs to 'web-v2'.
    clash = await dashboards.reconcile_dashboard(
        client,
        tenant=tenant,
        name="web",
        spec=spec_of(
            tenant, panel("v2_b", sql, materialize=True), panel("v2_a", sql, materialize=True)
        ),
        previous=[],
    )
    assert "materializedView" not in clash.panels[1]
    assert "taken by dashboard web-v2 panel a" in clash.panels[1]["message"]
    assert {c.type: c.ok for c in clash.conditions} == {"Ready": False, "Valid": True}
    assert set(_views(chdb_client, tenant)) == {"mv_web_v2_a", "mv_web_v2_b"}

    dropped = await dashboards.drop_dashboard(chdb_client, tenant=tenant, name="web")
    assert dropped == ["mv_web_v2_b"]
    assert set(_views(chdb_client, tenant)) == {"mv_web_v2_a"}
    assert await dashboards.drop_dashboard(chdb_client, tenant=tenant, name="web-v2") == [
        "mv_web_v2_a"
    ]
    assert _views(chdb_client, tenant) == {}


async def test_slow_validation_is_the_panels_fault(
    client: ClickHouseClient, tenant: TenantModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboards, "_PLAN_SETTINGS", "\nSETTINGS max_execution_time = 1")
    slow = "SELECT (SELECT sum(sleepEachRow(0.5)) FROM numbers(3)) AS x"
    outcome = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="slow", spec=spec_of(tenant, panel("slow", slow)), previous=[]
    )
    assert not outcome.panels[0]["valid"]
    assert "validating the panel took longer than" in outcome.panels[0]["message"]


async def test_materialized_panel_cannot_use_variables(
    client: ClickHouseClient, tenant: TenantModel
) -> None:
    spec = spec_of(
        tenant,
        panel(
            "bad", "SELECT count() AS n FROM events WHERE event = {kind:String}", materialize=True
        ),
    )
    outcome = await dashboards.reconcile_dashboard(
        client, tenant=tenant, name="d", spec=spec, previous=[]
    )
    assert not outcome.panels[0]["valid"]
    assert "materialized panel cannot use variables" in outcome.panels[0]["message"]
    assert outcome.views_created == []


async def test_client_on_the_wrong_database_is_refused(
    chdb_client: ChdbClient, client: ClickHouseClient, tenant: TenantModel
) -> None:
    spec = spec_of(tenant, panel("p", "SELECT 1"))
    with pytest.raises(ValueError, match="open_tenant_client"):
        await dashboards.reconcile_dashboard(
            chdb_client, tenant=tenant, name="d", spec=spec, previous=[]
        )


async def test_drop_dashboard_of_a_tenant_without_database(
    tenant: TenantModel, chdb_client: ChdbClient
) -> None:
    assert await dashboards.drop_dashboard(chdb_client, tenant=tenant, name="gone") == []


async def test_dashboard_over_http_adapter(
    chdb_client: ChdbClient, tenant: TenantModel, loopback_url: str
) -> None:
    """The operator's path in local e2e: clickhouse-connect to the loopback endpoint."""
    url = connect.clickhouse_url(tenant, "unused", override=loopback_url)
    plain = clickhouse.open_tenant_client(url, database="default")
    try:
        await schema_step.ensure_schema(plain, tenant)
    finally:
        plain.close()
    client = tenant_client(url, tenant)
    db = connect.database_name(tenant)
    try:
        spec = spec_of(
            tenant,
            panel(
                "recent",
                "SELECT count() AS n FROM events WHERE timestamp >= {from:DateTime} "
                "AND event = {kind:String}",
            ),
            panel("mat", "SELECT event, count() AS n FROM events GROUP BY event", materialize=True),
            panel("bad", "SELECT nope FROM events"),
            panel("syntax", "SELECT FROM WHERE"),
        )
        outcome = await dashboards.reconcile_dashboard(
            client, tenant=tenant, name="over-http", spec=spec, previous=[]
        )
        by_id = {p["id"]: p for p in outcome.panels}
        assert by_id["recent"]["valid"], by_id["recent"]["message"]
        assert by_id["mat"]["materializedView"] == "mv_over_http_mat"
        assert "unknown column" in by_id["bad"]["message"]
        assert by_id["syntax"]["message"].startswith("syntax error at line 1")
        client.insert("events", events(4))
        rows = chdb_client.query(f"SELECT sum(n) AS n FROM {db}.mv_over_http_mat")  # noqa: S608 - generated test names
        assert rows == [{"n": 4}]
        assert await dashboards.drop_dashboard(client, tenant=tenant, name="over-http") == [
            "mv_over_http_mat"
        ]
    finally:
        client.close()
