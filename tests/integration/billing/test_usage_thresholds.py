"""An organisation is told once when its events this period reach 80 % and once at
100 % of its plan's monthly events (issue 16, item 4), however often the check runs:
real PostgreSQL, usage sent to the internal usage route as ingestion sends it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from controlplane.billing import catalog, service
from tests.integration.billing.conftest import Billing
from tests.support.wait import scaled


async def _send(b: Billing, quantity: int, *, at: datetime) -> None:
    body = {
        "events": [
            {
                "metric": "events_ingested",
                "tenant": "shop",
                "quantity": quantity,
                "timestamp": at.isoformat(),
                "idempotency_key": f"t-{uuid.uuid4().hex}",
            }
        ]
    }
    r = await b.http.post(b.service_usage, json=body, headers=b.service)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1


async def _check(b: Billing, now: datetime) -> tuple[int, list[str]]:
    """One check: how many it told, and the organisation's usage notices after it."""
    conn = await asyncpg.connect(b.database_url)
    try:
        async with conn.transaction():
            told = await service.usage_thresholds(conn, now=now, email=False)
        notices = await conn.fetch(
            "SELECT alertname FROM alert_notifications WHERE org_id = $1 "
            "AND alertname LIKE 'Usage%' ORDER BY id",
            uuid.UUID(b.org_id),
        )
    finally:
        await conn.close(timeout=scaled(30))
    return told, [n["alertname"] for n in notices]


async def test_eighty_and_a_hundred_percent_are_told_once_each(billing: Billing) -> None:
    b = billing
    now = datetime.now(UTC)
    org = (await b.http.get(b.url(""), headers=b.owner)).json()
    limit = catalog.plan(org["plan"]).limits.events_per_month

    await _send(b, limit * 79 // 100, at=now)
    assert await _check(b, now) == (0, [])  # under 80 %

    await _send(b, limit // 100, at=now)  # 80 % now
    assert await _check(b, now) == (1, ["Usage80Percent"])
    assert await _check(b, now) == (0, ["Usage80Percent"])  # not again

    await _send(b, limit // 5, at=now)  # 100 %
    assert await _check(b, now) == (1, ["Usage80Percent", "Usage100Percent"])
    assert await _check(b, now) == (0, ["Usage80Percent", "Usage100Percent"])

    r = await b.http.get(f"/v1/orgs/{b.org_id}/notifications", headers=b.owner)
    assert r.status_code == 200, r.text
    summaries = [n["summary"] for n in r.json() if n["alertname"].startswith("Usage")]
    assert any("100 % of the plan's" in s for s in summaries)
