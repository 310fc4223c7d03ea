"""Schema and Dashboards through the whole operator: Tenant -> schema -> panels -> views.

kwok runs no containers, so the operator reaches "the tenant's ClickHouse" at the
loopback endpoint over the session's chDB engine (TENANTRY_CLICKHOUSE_URL_OVERRIDE):
the SQL runs for real in the ClickHouse engine.
"""

from __future__ import annotations

from typing import Any

from tenantry.clickhouse.chdb_client import ChdbClient
from tests.e2e.test_tenant_lifecycle import wait_phase
from tests.support.kube import Kube, eventually


def _dashboard(name: str, tenant: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Dashboard",
        "metadata": {"name": name},
        "spec": {"tenantRef": {"name": tenant}, "title": "Traffic", "panels": panels},
    }


def _tables(chdb: ChdbClient, database: str) -> set[str]:
    rows = chdb.query(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": database}
    )
    return {str(r["name"]) for r in rows}


def test_schema_is_provisioned_and_follows_retention(
    crds: Kube, make_tenant: Any, chdb_client: ChdbClient
) -> None:
    name = make_tenant("dp-schema", {"retentionDays": 30})
    st = wait_phase(crds, name, "Ready")
    schema = eventually(
        lambda: crds.get("tenant", name).get("status", {}).get("schema"),
        timeout=30,
        what="status.schema",
    )
    database = "t_" + name.replace("-", "_")
    assert schema["database"] == database
    assert schema["retentionDays"] == 30
    assert schema["hosts"]
    assert "events" in _tables(chdb_client, database)
    assert st["phase"] == "Ready"
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"retentionDays":7}}')
    eventually(
        lambda: crds.get("tenant", name)["status"].get("schema", {}).get("retentionDays") == 7,
        timeout=30,
        what="retention 7 recorded",
    )
    [row] = chdb_client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'events'",
        {"db": database},
    )
    assert "toIntervalDay(7)" in str(row["engine_full"]) or "7 DAY" in str(row["engine_full"])


def test_dashboard_panels_are_validated_and_materialized(
    crds: Kube, make_tenant: Any, chdb_client: ChdbClient
) -> None:
    tenant = make_tenant("dp-dash", {})
    wait_phase(crds, tenant, "Ready")
    eventually(
        lambda: crds.get("tenant", tenant).get("status", {}).get("schema"),
        timeout=30,
        what="schema",
    )
    database = "t_" + tenant.replace("-", "_")
    name = f"{tenant}-board"
    crds.apply(
        _dashboard(
            name,
            tenant,
            [
                {
                    "id": "views",
                    "title": "Views",
                    "materialize": True,
                    "sql": "SELECT toDate(timestamp) AS d, count() AS c FROM events GROUP BY d",
                },
                {"id": "typo", "title": "Typo", "sql": "SELECT nosuchcolumn FROM events"},
                {"id": "escape", "title": "Escape", "sql": "SELECT * FROM system.users"},
            ],
        )
    )
    try:

        def validated() -> dict[str, Any] | None:
            st = crds.get("dashboard", name).get("status") or {}
            return st if st.get("panelsValid") == "1/3" else None

        st = eventually(validated, timeout=60, what="panels validated")
        panels = {p["id"]: p for p in st["panels"]}
        assert panels["views"]["valid"]
        assert panels["views"]["materializedView"]
        assert not panels["typo"]["valid"]
        assert "nosuchcolumn" in panels["typo"]["message"]
        assert not panels["escape"]["valid"]
        assert "system" in panels["escape"]["message"]
        assert panels["views"]["materializedView"] in _tables(chdb_client, database)
        view = panels["views"]["materializedView"]
        crds.run("delete", "dashboard", name, "--timeout=60s")
        assert view not in _tables(chdb_client, database)
    finally:
        crds.try_run("delete", "dashboard", name, "--wait=false")
