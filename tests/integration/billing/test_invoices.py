"""Subscriptions and invoices on real PostgreSQL: a plan change mid-period prorates the
base fees and moves the organisation's tenant limits, cancellation ends at the period
end, and closing and finalizing a period is idempotent, immutable and audited."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from controlplane.billing import pricing, repository, service
from tests.integration.billing.conftest import Billing
from tests.integration.billing.test_metering import events
from tests.integration.controlplane.conftest import bearer, sign_up_and_login
from tests.support.wait import scaled, until


async def test_plan_change_mid_period_prorates_and_moves_limits(billing: Billing) -> None:
    b = billing
    r = await b.http.get(b.url("/billing/invoices/upcoming"), headers=b.owner)
    assert r.status_code == 404  # no subscription yet
    r = await b.http.post(b.url("/billing/subscription"), json={"plan": "growth"}, headers=b.owner)
    assert r.status_code == 201, r.text
    assert r.json()["plan"] == "growth"
    assert r.json()["status"] == "active"
    again = await b.http.post(
        b.url("/billing/subscription"), json={"plan": "growth"}, headers=b.owner
    )
    assert again.status_code == 409
    period = pricing.period_of(datetime.now(UTC))
    await _backdate_subscription(b, period.start)  # on growth since the period began

    r = await b.http.patch(
        b.url("/billing/subscription"), json={"plan": "enterprise"}, headers=b.owner
    )
    assert r.status_code == 200, r.text
    sub = r.json()
    assert [s["plan"] for s in sub["segments"]] == ["growth", "enterprise"]
    changed = datetime.fromisoformat(sub["segments"][1]["valid_from"])
    assert sub["segments"][0]["valid_to"] == sub["segments"][1]["valid_from"]

    org = (await b.http.get(b.url(""), headers=b.owner)).json()
    assert org["plan"] == "enterprise"  # tenant creation checks limits against this

    r = await b.http.get(b.url("/billing/invoices/upcoming"), headers=b.owner)
    assert r.status_code == 200, r.text
    preview = r.json()
    assert pricing.period_of(changed) == period
    base = [(line["plan"], line["amount"]) for line in preview["lines"] if line["kind"] == "base"]
    cut = period.offset(changed)
    assert base == [
        ("growth", pricing.prorate(49_00, start=0, end=cut, period=period.seconds)),
        (
            "enterprise",
            pricing.prorate(499_00, start=cut, end=period.seconds, period=period.seconds),
        ),
    ]
    assert base[0][1] + base[1][1] < 499_00  # cheaper than a whole period on enterprise
    assert preview["status"] == "preview"
    assert preview["currency"] == "EUR"
    assert preview["total"] == sum(line["amount"] for line in preview["lines"])

    r = await b.http.post(b.url("/billing/subscription/cancel"), headers=b.owner)
    assert r.status_code == 200
    assert r.json()["status"] == "canceling"
    assert datetime.fromisoformat(r.json()["cancel_at"]) == period.end
    twice = await b.http.post(b.url("/billing/subscription/cancel"), headers=b.owner)
    assert twice.json() == r.json()
    r = await b.http.patch(b.url("/billing/subscription"), json={"plan": "growth"}, headers=b.owner)
    assert r.status_code == 409

    conn = await asyncpg.connect(b.database_url)
    try:
        actions = await conn.fetch(
            "SELECT action, detail FROM audit_events WHERE action LIKE 'billing.%' ORDER BY seq"
        )
    finally:
        await conn.close(timeout=scaled(30))
    assert [a["action"] for a in actions] == [
        "billing.subscription.start",
        "billing.subscription.change",
        "billing.subscription.cancel",
    ]


async def _backdate_subscription(b: Billing, to: datetime) -> None:
    """A subscription that began before the previous period (the API only starts now)."""
    conn = await asyncpg.connect(b.database_url)
    try:
        await conn.execute("UPDATE billing_plan_segments SET valid_from = $1", to)
        await conn.execute("UPDATE billing_subscriptions SET started_at = $1", to)
    finally:
        await conn.close(timeout=scaled(30))


async def test_close_and_finalize_are_idempotent_and_final(billing: Billing) -> None:
    b = billing
    b.configure(usage_grace_days=62)
    now = datetime.now(UTC)
    last = pricing.period_of(now).previous()
    r = await b.http.post(b.url("/billing/subscription"), json={"plan": "growth"}, headers=b.owner)
    assert r.status_code == 201
    await _backdate_subscription(b, last.start - timedelta(days=20))

    at = last.start + timedelta(days=2)
    first = {"events": events(10, at=at, metric="bytes_ingested", tag="a")}
    assert (await b.http.post(b.service_usage, json=first, headers=b.service)).json()[
        "accepted"
    ] == 10

    current = await b.http.post(
        b.url(f"/billing/periods/{pricing.period_of(now).key}/close"), headers=b.owner
    )
    assert current.status_code == 409  # the current period has not ended

    r = await b.http.post(b.url(f"/billing/periods/{last.key}/close"), headers=b.owner)
    assert r.status_code == 200, r.text
    draft = r.json()
    assert draft["status"] == "draft"
    assert draft["number"] is None
    assert draft["total"] == 49_00 + 0  # 55 bytes at 8 cents per GB rounds to 0

    big = {
        "events": [
            {**e, "quantity": 10**9} for e in events(3, at=at, metric="bytes_ingested", tag="b")
        ]
    }
    assert (await b.http.post(b.service_usage, json=big, headers=b.service)).json()["accepted"] == 3
    r = await b.http.post(b.url(f"/billing/periods/{last.key}/close"), headers=b.owner)
    assert r.json()["id"] == draft["id"]
    assert r.json()["total"] == 49_00 + 24  # refreshed draft: 3 GB at 8 cents

    finals = await asyncio.gather(
        *(
            b.http.post(b.url(f"/billing/invoices/{draft['id']}/finalize"), headers=b.owner)
            for _ in range(4)
        )
    )
    assert all(f.status_code == 200 for f in finals), [f.text for f in finals]
    bodies = [f.json() for f in finals]
    assert all(x == bodies[0] for x in bodies)
    done = bodies[0]
    assert done["status"] == "finalized"
    assert done["number"].endswith(last.start.strftime("%Y%m"))
    assert done["total"] == 49_00 + 24

    # Late events for a finalized period are refused even inside the grace window.
    late = {"events": events(1, at=at, metric="bytes_ingested", tag="c")}
    r = await b.http.post(b.service_usage, json=late, headers=b.service)
    assert r.json()["accepted"] == 0
    assert r.json()["rejected"][0]["reason"] == "the invoice of this period is finalized"

    # Closing again returns the finalized invoice unchanged; so do reads.
    r = await b.http.post(b.url(f"/billing/periods/{last.key}/close"), headers=b.owner)
    assert r.json() == done
    assert (
        await b.http.get(b.url(f"/billing/invoices/{done['id']}"), headers=b.owner)
    ).json() == done
    listed = (await b.http.get(b.url("/billing/invoices"), headers=b.owner)).json()
    assert listed == [done]

    conn = await asyncpg.connect(b.database_url)
    try:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await conn.execute("UPDATE billing_invoices SET total = 0")
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await conn.execute("DELETE FROM billing_invoices")
        actions = [
            r["action"]
            for r in await conn.fetch(
                "SELECT action FROM audit_events WHERE action LIKE 'billing.invoice.%' ORDER BY seq"
            )
        ]
        notices = await conn.fetch(
            "SELECT summary FROM alert_notifications WHERE alertname = 'InvoiceFinalized'"
        )
    finally:
        await conn.close(timeout=scaled(30))
    assert actions == ["billing.invoice.draft", "billing.invoice.draft", "billing.invoice.finalize"]
    # the organisation is told once, though finalize was called four times at once
    assert [n["summary"] for n in notices] == [
        f"Invoice {done['number']} for {last.key}: {done['total']} {done['currency']}"
    ]


async def test_billing_permissions_by_role(billing: Billing) -> None:
    b = billing
    members = {}
    for role in ("admin", "viewer", "billing"):
        user = await sign_up_and_login(b.http)
        r = await b.http.post(
            b.url("/members"), json={"email": user["email"], "role": role}, headers=b.owner
        )
        assert r.status_code == 201
        members[role] = bearer(user)
    assert (await b.http.get(b.url("/billing/plans"), headers=members["viewer"])).status_code == 403
    assert (await b.http.get(b.url("/billing/plans"), headers=members["admin"])).status_code == 200
    start = {"plan": "starter"}
    r = await b.http.post(b.url("/billing/subscription"), json=start, headers=members["admin"])
    assert r.status_code == 403
    r = await b.http.post(b.url("/billing/subscription"), json=start, headers=members["billing"])
    assert r.status_code == 201
    plans = (await b.http.get(b.url("/billing/plans"), headers=members["billing"])).json()
    assert {p["key"] for p in plans} == {"starter", "growth", "enterprise"}
    r = await b.http.get(
        b.url("/billing/invoices/00000000-0000-0000-0000-000000000000"), headers=b.owner
    )
    assert r.status_code == 404
    assert (
        await b.http.post(b.url("/billing/periods/2026-13/close"), headers=b.owner)
    ).status_code == 422


async def test_the_closer_finalizes_due_periods_once_and_notifies(billing: Billing) -> None:
    b = billing
    now = datetime.now(UTC)
    last = pricing.period_of(now).previous()
    r = await b.http.post(b.url("/billing/subscription"), json={"plan": "growth"}, headers=b.owner)
    assert r.status_code == 201
    await _backdate_subscription(b, last.start)
    notified: list[str] = []
    listener = await asyncpg.connect(b.database_url)
    await listener.add_listener(
        repository.FINALIZED_CHANNEL, lambda *args: notified.append(str(args[-1]))
    )
    pool = await asyncpg.create_pool(b.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        # Inside the late-event window nothing is closed.
        assert (
            await service.close_due(pool, now=now, grace=now - last.end + timedelta(days=1)) == []
        )
        numbers = await service.close_due(pool, now=now, grace=timedelta(0))
        slug = (await b.http.get(b.url(""), headers=b.owner)).json()["slug"]
        assert numbers == [f"{slug.upper()}-{last.start:%Y%m}"]
        assert await service.close_due(pool, now=now, grace=timedelta(0)) == []
        await until(lambda: notified, what="the finalized notification")
    finally:
        async with asyncio.timeout(scaled(30)):
            await pool.close()
        await listener.close(timeout=scaled(30))
    (invoice,) = (await b.http.get(b.url("/billing/invoices"), headers=b.owner)).json()
    assert invoice["status"] == "finalized"
    assert invoice["total"] == 49_00  # a whole period on growth, no usage
    assert notified == [invoice["id"]]
    conn = await asyncpg.connect(b.database_url)
    try:
        actors = {
            r["actor"]
            for r in await conn.fetch(
                "SELECT actor FROM audit_events WHERE action LIKE 'billing.invoice.%'"
            )
        }
    finally:
        await conn.close(timeout=scaled(30))
    assert actors == {"service:internal"}


async def test_no_event_accepted_during_finalization_is_left_out(billing: Billing) -> None:
    """Batches racing a finalization: each is either in the invoice or refused."""
    b = billing
    b.configure(usage_grace_days=62)
    now = datetime.now(UTC)
    last = pricing.period_of(now).previous()
    r = await b.http.post(b.url("/billing/subscription"), json={"plan": "growth"}, headers=b.owner)
    assert r.status_code == 201
    await _backdate_subscription(b, last.start)
    at = last.start + timedelta(days=1)
    draft = (await b.http.post(b.url(f"/billing/periods/{last.key}/close"), headers=b.owner)).json()

    def batch(tag: str) -> dict[str, object]:
        return {"events": events(50, at=at, metric="events_ingested", tag=tag)}

    sends = [
        b.http.post(b.service_usage, json=batch(f"r{i}"), headers=b.service) for i in range(12)
    ]
    finalize = b.http.post(b.url(f"/billing/invoices/{draft['id']}/finalize"), headers=b.owner)
    results = await asyncio.gather(*sends[:6], finalize, *sends[6:])
    final = results[6].json()
    assert final["status"] == "finalized"
    accepted = sum(r.json()["accepted"] for i, r in enumerate(results) if i != 6)
    refused = sum(len(r.json()["rejected"]) for i, r in enumerate(results) if i != 6)
    assert accepted + refused == 12 * 50
    stored = await _quantity_in(b, last)
    invoiced = sum(
        line["quantity"] for line in final["lines"] if line["metric"] == "events_ingested"
    )
    assert invoiced == stored  # everything accepted is billed, nothing more


async def _quantity_in(b: Billing, period: pricing.Period) -> int:
    r = await b.http.get(b.url(f"/billing/usage?period={period.key}"), headers=b.owner)
    return int(next(m["quantity"] for m in r.json()["metrics"] if m["metric"] == "events_ingested"))


async def test_close_periods_command_finalizes_once(billing: Billing) -> None:
    """`tenantry controlplane close-periods`, as a timer or CronJob runs it."""
    b = billing
    last = pricing.period_of(datetime.now(UTC)).previous()
    r = await b.http.post(b.url("/billing/subscription"), json={"plan": "growth"}, headers=b.owner)
    assert r.status_code == 201
    await _backdate_subscription(b, last.start)
    env = {
        **os.environ,
        "TENANTRY_CP_DATABASE_URL": b.database_url,
        "TENANTRY_CP_USAGE_GRACE_DAYS": "0",
    }
    cmd = [sys.executable, "-m", "tenantry_cli", "controlplane", "close-periods"]
    first = await asyncio.to_thread(
        subprocess.run,
        cmd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(120),
    )
    slug = (await b.http.get(b.url(""), headers=b.owner)).json()["slug"]
    assert f"finalized {slug.upper()}-{last.start:%Y%m}" in first.stdout
    again = await asyncio.to_thread(
        subprocess.run,
        cmd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(120),
    )
    assert f"{slug.upper()}-" not in again.stdout
    (invoice,) = (await b.http.get(b.url("/billing/invoices"), headers=b.owner)).json()
    assert invoice["status"] == "finalized"
