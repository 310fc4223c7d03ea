"""The whole product, end to end, every component real and running as it would:

control plane API (uvicorn) → Tenant CR → operator (a separate process) → stack Ready +
events schema provisioned → API key through the API → ingestion service (a separate
process) validating the key at the control plane → events posted → Redis Stream →
writer → ClickHouse → Dashboard through the API → operator validates its panels →
panel data through the API.

kwok runs no containers, so "the tenant's ClickHouse" is the session's engine behind
the loopback endpoint, which the operator, the ingestion service and the control plane
all reach by URL, as they would reach the tenant's Service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
from tenantry_operator import normalize, usage

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.internal_client import InternalClient
from tenantry_dev.loopback_server import LoopbackServer
from tests.conftest import LOOPBACK_WRITER_PASSWORD
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.integration.controlplane.processes import INTERNAL_TOKEN as TOKEN
from tests.integration.controlplane.processes import Served, control_plane, spawn_cli
from tests.integration.controlplane.servers import RedisServer, free_port
from tests.support import journey
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.wait import scaled, stop_process, until

PANEL = "SELECT count() AS n FROM events WHERE event = 'signup'"


@pytest.fixture
async def api(
    database: str, redis_db: str, crds: Kube, loopback: LoopbackServer
) -> AsyncIterator[Served]:
    """The control plane as its own process (`tenantry controlplane serve`)."""
    extra = {"TENANTRY_CP_CLICKHOUSE_URL_OVERRIDE": loopback.url}
    async with control_plane(
        database=database, redis=redis_db, kubeconfig=crds.kubeconfig, extra_env=extra
    ) as served:
        yield served


@pytest.fixture
def ingestion(redis_server: RedisServer, loopback: LoopbackServer) -> tuple[int, dict[str, str]]:
    """(port, env) for `tenantry ingest`, which the test starts once it knows the tenant."""
    port = free_port()
    env = {
        **os.environ,
        "TENANTRY_LISTEN": f"127.0.0.1:{port}",
        # not the default 0.0.0.0:9464, which `make dev`'s control plane and other tests'
        # processes hold: taken, it stopped ingestion after it had accepted the events
        "TENANTRY_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        "TENANTRY_REDIS_HOST": "127.0.0.1",
        "TENANTRY_REDIS_PORT": str(redis_server.port),
        "TENANTRY_CLICKHOUSE_URL": f"http://127.0.0.1:{loopback.port}",
        "TENANTRY_CLICKHOUSE_USER": "writer",
        "TENANTRY_CLICKHOUSE_PASSWORD": LOOPBACK_WRITER_PASSWORD,
        "TENANTRY_INTERNAL_TOKEN": TOKEN,
        "TENANTRY_INGEST_FLUSH_SECONDS": "0.2",
    }
    return port, env


async def test_events_in_dashboard_out(
    api: Served,
    crds: Kube,
    operator_process: OperatorProcess,
    ingestion: tuple[int, dict[str, str]],
    chdb_client: ChdbClient,
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=scaled(60)) as http:
        owner = await sign_up_and_login(http)
        h = bearer(owner)
        org_id = await new_org(http, owner)
        r = await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "shop"}, headers=h)
        assert r.status_code == 201, r.text
        tenant_cr = r.json()["resource_name"]

        async def ready() -> dict[str, object] | None:
            body = (await http.get(f"/v1/orgs/{org_id}/tenants/shop", headers=h)).json()
            status = body.get("status") or {}
            return status if status.get("phase") == "Ready" and status.get("schema") else None

        status = await until(
            ready, what="tenant Ready with its schema (through the API)", timeout=180
        )
        assert status is not None
        database = status["schema"]["database"]  # type: ignore[index]
        assert database == "t_" + tenant_cr.replace("-", "_")

        r = await http.post(
            f"/v1/orgs/{org_id}/tenants/shop/apikeys", json={"name": "producer"}, headers=h
        )
        assert r.status_code == 201, r.text
        key = r.json()["key"]

        port, env = ingestion
        env = {
            **env,
            "TENANTRY_TENANT": tenant_cr,
            "TENANTRY_CLICKHOUSE_DATABASE": database,
            "TENANTRY_CONTROLPLANE_URL": api.internal_url,
            "TENANTRY_ORG_ID": org_id,
        }
        proc = spawn_cli(
            ["ingest"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as ing:

                async def up() -> bool:
                    try:
                        return (await ing.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await until(up, what="ingestion ready", timeout=120)
                now = dt.datetime.now(dt.UTC).isoformat()
                events = [
                    {"event": "signup", "user_id": f"u{i}", "timestamp": now} for i in range(25)
                ]
                events += [{"event": "click", "user_id": "u0", "timestamp": now}]
                r = await ing.post(
                    "/v1/events", json=events, headers={"Authorization": f"Bearer {key}"}
                )
                assert r.status_code == 202, r.text
                bad = await ing.post(
                    "/v1/events", json=events, headers={"Authorization": "Bearer nope"}
                )
                assert bad.status_code in (401, 403)

            async def stored() -> bool:
                rows = chdb_client.query(
                    "SELECT count() AS n FROM {db:Identifier}.events", {"db": database}
                )
                return int(rows[0]["n"]) == 26

            await until(stored, what="events written to ClickHouse", timeout=120)
        finally:
            await asyncio.to_thread(stop_process, proc, grace=20, what="ingestion")

        panel = await journey.create_dashboard(http, org_id=org_id, headers=h, sql=PANEL)
        result = await journey.panel_data(http, panel, headers=h, ceiling=120)
        assert result["rows"] in ([[25]], [{"n": 25}]), result

        # The ingestion service reported what it stored to the organisation's billing.
        metrics = await journey.billed_usage(http, org_id=org_id, headers=h, events=26, ceiling=120)
        assert metrics["bytes_ingested"] > 0

        # The operator's meter: host time and storage sampled from ClickHouse, reported
        # twice for the same window and counted once.
        tenant_body = crds.get("tenant", tenant_cr)
        model = normalize.tenant_model(tenant_body)
        storage = usage.sample_storage(chdb_client, database)
        assert storage > 0
        batch = usage.events(
            model=model,
            uid=tenant_body["metadata"]["uid"],
            status=tenant_body["status"],
            storage_bytes=storage,
            now=dt.datetime.now(dt.UTC),
            interval=300,
        )
        internal = InternalClient(api.internal_url, token=TOKEN)
        try:
            results = [await internal.report_usage(org_id, batch) for _ in range(2)]
        finally:
            await internal.aclose()
        assert [(r.accepted, r.duplicates) for r in results] == [(2, 0), (0, 2)]
        resp = await http.get(f"/v1/orgs/{org_id}/billing/usage", headers=h)
        metrics = {m["metric"]: m["quantity"] for m in resp.json()["metrics"]}
        assert metrics["clickhouse_host_hours"] == 300  # one host Ready, one window
        assert metrics["storage_bytes"] == storage
