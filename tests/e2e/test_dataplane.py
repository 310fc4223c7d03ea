"""Schema and Dashboards through the whole operator: Tenant -> schema -> panels -> views.

kwok runs no containers, so the operator reaches "the tenant's ClickHouse" at the
loopback endpoint over the session's chDB engine (TENANTRY_CLICKHOUSE_URL_OVERRIDE):
the SQL runs for real in the ClickHouse engine.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry_dev.services import free_port
from tests.conftest import LOOPBACK_WRITER_PASSWORD
from tests.e2e.test_tenant_lifecycle import condition, wait_phase
from tests.support.kube import Kube, tenant
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually, kubectl_timeout


def _dashboard(name: str, tenant: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Dashboard",
        "metadata": {"name": name},
        "spec": {"tenantRef": {"name": tenant}, "title": "Traffic", "panels": panels},
    }


def schema_pending(kube: Kube, name: str, *, what: str) -> dict[str, Any]:
    """The Tenant's Ready condition once the schema step was refused (`what`: why)."""
    return eventually(
        lambda: condition(kube, name, "Ready"),
        accept=lambda cond: cond.get("reason") == "SchemaPending",
        timeout=180,
        what=f"the schema step refused ({what})",
    )


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
    schema = st.get("schema")  # Ready includes the schema (reconcile._schema)
    assert schema, st
    database = "t_" + name.replace("-", "_")
    assert schema["database"] == database
    assert schema["retentionDays"] == 30
    assert schema["hosts"]
    assert "events" in _tables(chdb_client, database)
    assert st["phase"] == "Ready"
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"retentionDays":7}}')
    eventually(
        lambda: crds.get("tenant", name)["status"].get("schema", {}),
        accept=lambda recorded: recorded.get("retentionDays") == 7,
        timeout=120,
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
    assert wait_phase(crds, tenant, "Ready").get("schema")
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
        st = eventually(
            lambda: crds.get("dashboard", name).get("status") or {},
            accept=lambda st: st.get("panelsValid") == "1/3",
            timeout=180,
            what="panels validated",
        )
        panels = {p["id"]: p for p in st["panels"]}
        assert panels["views"]["valid"]
        assert panels["views"]["materializedView"]
        assert not panels["typo"]["valid"]
        assert "nosuchcolumn" in panels["typo"]["message"]
        assert not panels["escape"]["valid"]
        assert "system" in panels["escape"]["message"]
        assert panels["views"]["materializedView"] in _tables(chdb_client, database)
        view = panels["views"]["materializedView"]
        crds.run("delete", "dashboard", name, f"--timeout={kubectl_timeout(120)}")
        assert view not in _tables(chdb_client, database)
    finally:
        crds.try_run("delete", "dashboard", name, "--wait=false")


def test_a_refused_schema_step_is_retried_soon_after_clickhouse_answers(
    crds: Kube, chdb_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The schema step is the one wait of the worker that no watch ends: whether the
    tenant's ClickHouse answers is no Kubernetes event. It is retried on a short backoff
    (worker.next_wait), so a refusal costs seconds. Here the operator's timers are out
    of reach (resync and busy recheck 600 s): only that retry can make the tenant Ready
    once ClickHouse answers. With a retry at the busy recheck (30 s, as before), each
    refusal cost 30 s, and two of them a test's whole minute of waiting for Ready."""
    from tenantry_dev.loopback_server import LoopbackServer

    port = free_port()  # nothing listens here until the tenant was refused
    env = {
        **crds.env(),
        "TENANTRY_CLICKHOUSE_URL_OVERRIDE": (
            f"http://writer:{LOOPBACK_WRITER_PASSWORD}@127.0.0.1:{port}/"
        ),
        "TENANTRY_RESYNC_SECONDS": "600",
        "TENANTRY_BUSY_RECHECK_SECONDS": "600",
    }
    operator = OperatorProcess(env=env, log=tmp_path_factory.mktemp("operator") / "operator.log")
    operator.start()
    name = f"dp-retry-{secrets.token_hex(2)}"
    try:
        crds.apply(tenant(name, {}))
        refused = schema_pending(crds, name, what="no ClickHouse yet")
        assert "not provisioned yet" in refused["message"]
        server = LoopbackServer(
            chdb_path, port=port, users={"writer": LOOPBACK_WRITER_PASSWORD}
        ).start()
        try:
            st = wait_phase(crds, name, "Ready", timeout=120)
        finally:
            server.close()
        assert st["schema"]["database"] == "t_" + name.replace("-", "_")
    finally:
        crds.try_run("delete", "tenant", name, "--wait=false")
        operator.stop()
