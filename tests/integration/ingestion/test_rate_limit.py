"""Per-API-key rate limits of `POST /v1/events` on the tenant's real Redis: 429 in the one
error shape with a sane Retry-After, nothing appended, and one key's traffic never
spends another key's budget. The window is a moving one (tenantry.ratelimit)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingestion import server
from ingestion.stream import Stream
from tenantry import ratelimit
from tests.integration.ingestion.conftest import (
    API_KEY,
    TENANT,
    RedisProcess,
    Service,
    make_service,
    metric_value,
    ndjson_events,
)

OTHER_KEY = "test-api-key-2"


@pytest.fixture
async def limited(stream: Stream, redis: Redis) -> AsyncIterator[Service]:
    key_limit = server.KeyLimit(
        ratelimit.MovingWindow(redis), tenant=TENANT, limit=ratelimit.per_window(3, 60)
    )
    async for made in make_service(stream, keys=(API_KEY, OTHER_KEY), key_limit=key_limit):
        yield made


async def test_a_key_over_its_limit_gets_429_with_retry_after(limited: Service) -> None:
    started = time.time()
    for _ in range(3):
        status, _, _ = await limited.post(ndjson_events(2))
        assert status == 202
    backlog = await limited.stream.backlog()
    status, headers, body = await limited.post(ndjson_events(2), **{"X-Request-ID": "rl-1"})
    assert status == 429
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert retry_after >= math.floor(60 - (time.time() - started)) - 1
    assert body == {
        "error": {
            "code": "rate_limited",
            "message": f"too many requests with this API key; retry in {retry_after} s",
            "requestId": "rl-1",
        }
    }
    assert await limited.stream.backlog() == backlog  # nothing of it was appended
    page = await limited.scrape()
    assert metric_value(page, 'tenantry_ingest_batches_total{outcome="rate_limited"}') == 1


async def test_one_key_does_not_throttle_another(limited: Service) -> None:
    for _ in range(3):
        assert (await limited.post(ndjson_events(1)))[0] == 202
    assert (await limited.post(ndjson_events(1)))[0] == 429
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert [(await limited.post(ndjson_events(1), **other))[0] for _ in range(3)] == [202] * 3
    assert (await limited.post(ndjson_events(1), **other))[0] == 429


async def test_refused_keys_are_not_counted(limited: Service) -> None:
    """The limit is counted after the key is checked: unknown keys spend nothing."""
    for _ in range(5):
        status, _, _ = await limited.post(ndjson_events(1), Authorization="Bearer nope")
        assert status == 401
    assert (await limited.post(ndjson_events(1)))[0] == 202


async def test_redis_down_during_the_limit_check_gives_503(
    limited: Service, redis_process: RedisProcess
) -> None:
    """The limit lives in the tenant's Redis: without it the answer is the same 503 +
    Retry-After as for the append, never a 500 and never an unlimited accept."""
    assert (await limited.post(ndjson_events(1)))[0] == 202
    redis_process.kill()
    status, headers, body = await limited.post(ndjson_events(1))
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert body["error"]["code"] == "unavailable"  # type: ignore[index]
    redis_process.start()
    assert (await limited.post(ndjson_events(1)))[0] == 202


async def test_a_concurrent_burst_gets_exactly_the_limit(redis: Redis) -> None:
    """Of a burst of one key's concurrent requests larger than its limit, exactly the
    limit is accepted (each check is one atomic script in Redis, whichever connection
    it comes on); each refused one gets a Retry-After."""
    key_limit = server.KeyLimit(
        ratelimit.MovingWindow(redis), tenant=TENANT, limit=ratelimit.per_window(5, 60)
    )
    assert await key_limit.hit(API_KEY) is None
    answers = await asyncio.gather(*(key_limit.hit(API_KEY) for _ in range(10)))
    assert answers.count(None) == 4
    refused = [a for a in answers if a is not None]
    assert len(refused) == 6
    assert all(isinstance(r, ratelimit.Refused) and 1 <= r.retry_after <= 60 for r in refused)
    assert isinstance(await key_limit.hit(API_KEY), ratelimit.Refused)


async def test_redis_down_fails_every_concurrent_check_then_checks_pass_again(
    redis: Redis, redis_process: RedisProcess
) -> None:
    key_limit = server.KeyLimit(
        ratelimit.MovingWindow(redis), tenant=TENANT, limit=ratelimit.per_window(100, 60)
    )
    redis_process.kill()
    answers = await asyncio.gather(
        *(key_limit.hit(API_KEY) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(a, (RedisError, OSError)) for a in answers), answers
    redis_process.start()
    assert await asyncio.gather(*(key_limit.hit(API_KEY) for _ in range(3))) == [None] * 3
