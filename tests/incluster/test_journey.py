"""A customer's whole journey on a cluster whose pods really run, the product installed
by its Helm chart, everything reached through Services:

sign up → organisation → Tenant through the API → the operator pod builds the stack and
every tenant pod is Running and Ready (configs mounted, secrets in env) → the schema
provisioned through the tenant's Service DNS name → API key → events POSTed to the
tenant's ingestion Service and counted in that tenant's ClickHouse → Dashboard, panel
data and SVG → the usage in billing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from tenantry_operator.model import LABEL_COMPONENT

from tenantry import contract
from tests.incluster import platform
from tests.incluster.conftest import Platform
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.support import journey
from tests.support.portforward import forward
from tests.support.wait import scaled, until

pytestmark = [pytest.mark.incluster, pytest.mark.timeout(1800)]

EVENTS = 40
PANEL = "SELECT count() AS n FROM events WHERE event = 'signup'"


async def test_a_customer_journey_through_services_only(installed: Platform) -> None:
    kube = installed.kube
    async with httpx.AsyncClient(base_url=installed.api, timeout=scaled(60)) as http:
        owner = await sign_up_and_login(http)
        h = bearer(owner)
        org_id = await new_org(http, owner)
        r = await http.post(f"/v1/orgs/{org_id}/tenants", json={"name": "shop"}, headers=h)
        assert r.status_code == 201, r.text
        tenant = r.json()["resource_name"]
        namespace = contract.tenant_namespace(tenant)

        async def ready() -> dict[str, Any] | None:
            body = (await http.get(f"/v1/orgs/{org_id}/tenants/shop", headers=h)).json()
            status = body.get("status") or {}
            return status if status.get("phase") == "Ready" and status.get("schema") else None

        status = await until(ready, what="the Tenant Ready with its schema", timeout=600)
        assert status is not None
        database = status["schema"]["database"]
        assert database == contract.tenant_database(tenant)

        # Every tenant pod really runs and is Ready, its config mounted, secrets in env.
        pods = kube.get("pods", "-n", namespace)["items"]
        assert pods
        running = platform.ready_pods(kube, namespace)
        assert {p["metadata"]["name"] for p in running} == {p["metadata"]["name"] for p in pods}
        components = {p["metadata"]["labels"].get(LABEL_COMPONENT) for p in running}
        assert {"clickhouse", "redis", "ingestion"} <= components
        ch_pod = next(
            p["metadata"]["name"]
            for p in running
            if p["metadata"]["labels"].get(LABEL_COMPONENT) == "clickhouse"
        )
        listed = kube.run("exec", "-n", namespace, ch_pod, "--", "ls", "/etc/clickhouse-server/")
        assert {"config.d", "users.d"} <= set(listed.split()), listed
        ingest_pod = next(
            p["metadata"]["name"]
            for p in running
            if p["metadata"]["labels"].get(LABEL_COMPONENT) == "ingestion"
        )
        # The password is in the pod's environment (its value is never printed).
        probe = 'test -n "$TENANTRY_CLICKHOUSE_PASSWORD" && echo set'
        out = kube.run("exec", "-n", namespace, ingest_pod, "--", "sh", "-c", probe)
        assert out.strip() == "set"

        r = await http.post(
            f"/v1/orgs/{org_id}/tenants/shop/apikeys", json={"name": "producer"}, headers=h
        )
        assert r.status_code == 201, r.text
        key = r.json()["key"]

        password = platform.clickhouse_password(kube, namespace)
        with (
            forward(
                kube, namespace, contract.CLICKHOUSE_SERVICE, contract.CLICKHOUSE_HTTP_PORT
            ) as ch_url,
            forward(kube, namespace, "ingestion", 8080) as ingest_url,
        ):
            async with (
                httpx.AsyncClient(base_url=ch_url, timeout=scaled(60)) as ch,
                httpx.AsyncClient(base_url=ingest_url, timeout=scaled(60)) as ingest,
            ):
                # The schema the operator pod provisioned through the Service's DNS name.
                tables = await platform.query(
                    ch,
                    # the database name is the contract's, not input
                    f"SELECT name FROM system.tables WHERE database = '{database}'",  # noqa: S608
                    password,
                )
                assert "events" in tables.split(), tables

                now = dt.datetime.now(dt.UTC).isoformat()
                events = [
                    {"event": "signup", "user_id": f"u{i}", "timestamp": now} for i in range(EVENTS)
                ]
                r = await ingest.post(
                    "/v1/events", json=events, headers={"Authorization": f"Bearer {key}"}
                )
                assert r.status_code == 202, r.text
                bad = await ingest.post(
                    "/v1/events", json=events, headers={"Authorization": "Bearer nope"}
                )
                assert bad.status_code == 401

                async def stored() -> int:
                    sql = f"SELECT count() FROM {database}.events"  # noqa: S608
                    return int(await platform.query(ch, sql, password))

                await until(
                    stored, accept=lambda n: n == EVENTS, what="events in ClickHouse", timeout=300
                )

        panel = await journey.create_dashboard(http, org_id=org_id, headers=h, sql=PANEL)
        result = await journey.panel_data(http, panel, headers=h, ceiling=300)
        assert result["rows"] in ([[EVENTS]], [{"n": EVENTS}]), result
        svg = await http.get(f"{panel}/chart.svg", headers=h)
        assert svg.status_code == 200, svg.text
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert str(EVENTS) in svg.text
        await journey.billed_usage(http, org_id=org_id, headers=h, events=EVENTS, ceiling=300)
