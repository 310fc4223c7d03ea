"""Usage metering on real PostgreSQL through the real app: duplicates submitted
concurrently are counted once, late events are accepted inside the window and refused
after it, and submission is open to the service token and ``billing:manage`` only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from controlplane.billing import pricing
from tenantry import internal_api
from tests.integration.billing.conftest import Billing
from tests.integration.controlplane.conftest import bearer, new_org, sign_up_and_login
from tests.support.wait import scaled


def events(n: int, *, at: datetime, metric: str = "events_ingested", tag: str = "") -> list[Any]:
    tag = tag or uuid.uuid4().hex[:8]
    return [
        {
            "metric": metric,
            "tenant": f"t{i % 3}",
            "quantity": i + 1,
            "timestamp": at.isoformat(),
            "idempotency_key": f"{tag}-{i}",
        }
        for i in range(n)
    ]


async def quantity(b: Billing, metric: str, *, period: str | None = None) -> int:
    r = await b.http.get(
        b.url("/billing/usage") + (f"?period={period}" if period else ""), headers=b.owner
    )
    assert r.status_code == 200, r.text
    return int(next(m["quantity"] for m in r.json()["metrics"] if m["metric"] == metric))


async def test_concurrent_duplicate_batches_are_counted_once(billing: Billing) -> None:
    b = billing
    now = datetime.now(UTC)
    batch = events(400, at=now)
    reordered = list(reversed(batch))  # same keys, opposite lock order: no deadlock
    sends = [batch] * 6 + [reordered] * 2
    results = await asyncio.gather(
        *(b.http.post(b.service_usage, json={"events": e}, headers=b.service) for e in sends)
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    bodies = [r.json() for r in results]
    assert sum(x["accepted"] for x in bodies) == 400
    assert sum(x["duplicates"] for x in bodies) == 400 * 7
    assert all(x["rejected"] == [] for x in bodies)
    assert await quantity(b, "events_ingested") == sum(range(1, 401))
    usage = (await b.http.get(b.url("/billing/usage"), headers=b.owner)).json()
    assert (usage["plan"], usage["events_per_month"], usage["events_over_limit"]) == (
        "starter",
        10_000_000,
        False,
    )
    conn = await asyncpg.connect(b.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM usage_events") == 400
        # Metering is data, not a billing change: no audit event per batch.
        assert not await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE action LIKE 'billing.%'"
        )
    finally:
        await conn.close(timeout=scaled(30))


async def test_duplicates_inside_one_batch_and_aggregations(billing: Billing) -> None:
    b = billing
    now = datetime.now(UTC)
    storage = [
        {
            "metric": "storage_bytes",
            "tenant": "a",
            "quantity": q,
            "timestamp": now.isoformat(),
            "idempotency_key": f"s-a-{q}",
        }
        for q in (10, 30, 20)
    ] + [
        {
            "metric": "storage_bytes",
            "tenant": "b",
            "quantity": 5,
            "timestamp": now.isoformat(),
            "idempotency_key": "s-b",
        }
    ]
    queries = events(7, at=now, metric="dashboard_queries")
    body = {"events": storage + storage[:2] + queries}
    r = await b.http.post(b.service_usage, json=body, headers=b.service)
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["duplicates"]) == (11, 2)
    assert await quantity(b, "storage_bytes") == 30 + 5  # per-tenant peak, summed
    assert await quantity(b, "dashboard_queries") == 7  # counted, quantity ignored


async def test_late_events_inside_the_window_only(billing: Billing) -> None:
    b = billing
    now = datetime.now(UTC)
    last = pricing.period_of(now).previous()
    late_at = last.start + timedelta(days=3)

    b.configure(usage_grace_days=0)
    r = await b.http.post(
        b.service_usage, json={"events": events(2, at=late_at, tag="late")}, headers=b.service
    )
    assert r.status_code == 200
    assert r.json()["accepted"] == 0
    assert [x["reason"] for x in r.json()["rejected"]] == ["the period of this event is closed"] * 2

    b.configure(usage_grace_days=62)  # the previous month is always inside 62 days
    future = events(1, at=now + timedelta(hours=1), tag="future")
    r = await b.http.post(
        b.service_usage,
        json={"events": events(2, at=late_at, tag="late") + future},
        headers=b.service,
    )
    assert r.json()["accepted"] == 2
    assert r.json()["rejected"] == [
        {"index": 2, "idempotency_key": "future-0", "reason": "the timestamp is in the future"}
    ]
    assert await quantity(b, "events_ingested", period=last.key) == 3
    assert await quantity(b, "events_ingested") == 0


async def test_who_may_submit_usage(billing: Billing) -> None:
    b = billing
    body = {"events": events(1, at=datetime.now(UTC))}
    wrong = {"Authorization": "Bearer not-the-token"}
    # The internal route: the service token only, and only on the internal listener.
    assert (await b.http.post(b.service_usage, json=body)).status_code == 401
    assert (await b.http.post(b.service_usage, json=body, headers=wrong)).status_code == 401
    r = await b.http.post(b.service_usage, json=body, headers=b.owner)
    assert r.status_code == 401  # a member's token is not the service's
    public = internal_api.usage_path(b.org_id)  # the same path on the public port
    r = await b.http.post(public, json=body, headers=b.service)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    missing = b.service_usage.replace(b.org_id, str(uuid.uuid4()))
    r = await b.http.post(missing, json=body, headers=b.service)
    assert r.status_code == 404
    assert (await b.http.post(b.service_usage, json=body, headers=b.service)).status_code == 200
    # The members' route does not take the service token.
    assert (await b.http.post(b.url("/usage"), json=body)).status_code == 401
    r = await b.http.post(b.url("/usage"), json=body, headers=b.service)
    assert r.status_code == 401
    # A member with billing:manage may (the owner); a viewer may not; an outsider sees 404.
    assert (await b.http.post(b.url("/usage"), json=body, headers=b.owner)).status_code == 200
    viewer = await sign_up_and_login(b.http)
    r = await b.http.post(
        b.url("/members"), json={"email": viewer["email"], "role": "viewer"}, headers=b.owner
    )
    assert r.status_code == 201
    r = await b.http.post(b.url("/usage"), json=body, headers=bearer(viewer))
    assert r.status_code == 403
    outsider = await sign_up_and_login(b.http)
    await new_org(b.http, outsider)
    r = await b.http.post(b.url("/usage"), json=body, headers=bearer(outsider))
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "organisation not found"


async def test_invalid_batches_are_refused_whole(billing: Billing) -> None:
    b = billing
    now = datetime.now(UTC)
    bad_metric = events(1, at=now, metric="coffee")
    naive = events(1, at=now)
    naive[0]["timestamp"] = "2026-11-01T00:00:00"
    negative = events(1, at=now)
    negative[0]["quantity"] = -1
    for batch in (bad_metric, naive, negative, [], events(5001, at=now)):
        r = await b.http.post(b.service_usage, json={"events": batch}, headers=b.service)
        assert r.status_code == 422, r.text
    r = await b.http.post(b.service_usage, content=b"{not json", headers=b.service)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"][0] == "body"
    conn = await asyncpg.connect(b.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM usage_events") == 0
    finally:
        await conn.close(timeout=scaled(30))
