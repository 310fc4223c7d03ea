"""The customer's steps after the events are stored, as the two journeys walk them (the
control plane's end-to-end test and the in-cluster one): a dashboard with one panel,
its data once the operator has validated the panel, and the organisation's billed
usage. Through the control plane's public API only (``http``: a client on its base URL;
``headers``: the signed-in owner's); ``ceiling``: how long a wait may take, in unscaled
seconds (tests/support/wait.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.wait import until

DASHBOARD = "growth"
PANEL_ID = "signups"


async def create_dashboard(
    http: httpx.AsyncClient, *, org_id: str, headers: dict[str, str], sql: str
) -> str:
    """The dashboard ``growth`` of the tenant ``shop``, one stat panel running ``sql``;
    the panel's path."""
    spec = {
        "tenantRef": {"name": "shop"},
        "title": "Signups",
        "refresh": "1m",
        "panels": [{"id": PANEL_ID, "title": "Signups", "sql": sql, "visualization": "stat"}],
    }
    r = await http.post(
        f"/v1/orgs/{org_id}/dashboards", json={"name": DASHBOARD, "spec": spec}, headers=headers
    )
    assert r.status_code == 201, r.text
    return f"/v1/orgs/{org_id}/dashboards/{DASHBOARD}/panels/{PANEL_ID}"


async def panel_data(
    http: httpx.AsyncClient, panel: str, *, headers: dict[str, str], ceiling: float
) -> dict[str, Any]:
    """The panel's data, once it answers 200 (after the operator validated the panel)."""

    async def data() -> dict[str, Any] | None:
        resp = await http.get(f"{panel}/data", headers=headers)
        return dict(resp.json()) if resp.status_code == 200 else None

    result: dict[str, Any] | None = await until(
        data, what="panel data (after the operator validated the panel)", timeout=ceiling
    )
    assert result is not None
    return result


async def billed_usage(
    http: httpx.AsyncClient,
    *,
    org_id: str,
    headers: dict[str, str],
    events: int,
    ceiling: float,
) -> dict[str, Any]:
    """The organisation's usage metrics, once billing counts ``events`` ingested events
    (the ingestion service reports what it stored)."""

    async def billed() -> dict[str, Any] | None:
        resp = await http.get(f"/v1/orgs/{org_id}/billing/usage", headers=headers)
        metrics = {m["metric"]: m["quantity"] for m in resp.json().get("metrics", [])}
        return metrics if metrics.get("events_ingested") == events else None

    metrics: dict[str, Any] | None = await until(
        billed, what="events_ingested in billing", timeout=ceiling
    )
    assert metrics is not None
    return metrics
