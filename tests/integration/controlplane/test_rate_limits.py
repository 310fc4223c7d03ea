"""Rate limits on real Redis: the moving window refuses the burst a fixed window lets
through where two windows meet, Retry-After says when a slot frees, and limits are kept
per organisation (one organisation's panel queries never throttle another's)."""

from __future__ import annotations

import asyncio
import math
import time

from redis.asyncio import Redis

from controlplane.settings import Settings
from tenantry import ratelimit
from tests.integration.controlplane.conftest import (
    bearer,
    make_settings,
    new_org,
    serve,
    sign_up_and_login,
)

WINDOW = 2


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def test_a_burst_where_fixed_windows_meet_is_refused(redis_db: str) -> None:
    redis = Redis.from_url(redis_db)
    try:
        limiter = ratelimit.MovingWindow(redis)
        limit = ratelimit.per_window(5, WINDOW)
        # The boundary a fixed window of WINDOW seconds would reset at: use the whole
        # allowance just before it, then ask again just after it.
        edge = (math.floor(time.time() / WINDOW) + 1) * WINDOW
        if edge - time.time() < 0.5:
            edge += WINDOW
        await _sleep_until(edge - 0.3)
        first = time.time()
        assert [await limiter.hit(limit, "t", "k") for _ in range(5)] == [None] * 5
        await _sleep_until(edge + 0.05)
        refused = await limiter.hit(limit, "t", "k")
        assert refused is not None  # a fixed window would have accepted 5 more here
        # The oldest request leaves the window WINDOW s after it was made.
        expected = first + WINDOW - time.time()
        assert 1 <= refused.retry_after <= math.ceil(expected) + 1
        assert refused.retry_after <= WINDOW
        # Refused requests do not count: once the oldest ones left, requests pass again.
        await _sleep_until(first + WINDOW + 0.3)
        assert await limiter.hit(limit, "t", "k") is None
    finally:
        await redis.aclose()


async def test_limits_are_per_identifier_and_bucket(redis_db: str) -> None:
    redis = Redis.from_url(redis_db)
    try:
        limiter = ratelimit.MovingWindow(redis)
        limit = ratelimit.per_window(2, 60)
        assert await limiter.hit(limit, "b", "one") is None
        assert await limiter.hit(limit, "b", "one") is None
        refused = await limiter.hit(limit, "b", "one")
        assert refused is not None
        assert 58 <= refused.retry_after <= 60
        assert await limiter.hit(limit, "b", "two") is None  # another identifier
        assert await limiter.hit(limit, "other", "one") is None  # another bucket
        # No identifier is stored in clear.
        assert not [k async for k in redis.scan_iter(match="*one*")]
    finally:
        await redis.aclose()


def _panel_settings(database: str, redis_db: str) -> Settings:
    return make_settings(database, redis_db, rate_limit_panel_queries_per_org=2)


async def test_panel_queries_are_limited_per_organisation(database: str, redis_db: str) -> None:
    """Each organisation has its own budget of panel queries. Without Kubernetes the
    queries themselves answer 503: the limit is counted before the data is fetched."""
    async with serve(_panel_settings(database, redis_db)) as (_, http):
        alice = await sign_up_and_login(http)
        bob = await sign_up_and_login(http)
        org_a = await new_org(http, alice)
        org_b = await new_org(http, bob)

        def panel(org: str) -> str:
            return f"/v1/orgs/{org}/dashboards/board/panels/total/data"

        codes = [(await http.get(panel(org_a), headers=bearer(alice))).status_code for _ in "ab"]
        assert codes == [503, 503]
        r = await http.get(panel(org_a), headers=bearer(alice))
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        error = r.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["requestId"] == r.headers["x-request-id"]
        # The chart of a panel is the same query: counted in the same budget.
        chart = panel(org_a).removesuffix("/data") + "/chart.svg"
        assert (await http.get(chart, headers=bearer(alice))).status_code == 429
        # Another organisation is not throttled by the first one's traffic.
        assert (await http.get(panel(org_b), headers=bearer(bob))).status_code == 503
        # Someone without access to the organisation is refused before counting.
        assert (await http.get(panel(org_b), headers=bearer(alice))).status_code in (403, 404)
        assert (await http.get(panel(org_b), headers=bearer(bob))).status_code == 503
