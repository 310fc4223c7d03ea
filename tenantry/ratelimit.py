"""Moving-window rate limits in Redis, shared by the control plane and ingestion.

Why a moving window (the `limits` library's `MovingWindowRateLimiter`) rather than
fixed windows: a fixed window lets a client spend its whole allowance at the end of
one window and again at the start of the next, twice the limit in a moment. The moving
window keeps the time of each of the last `limit` requests of a key (a Redis list,
trimmed to the limit, updated by one Lua script), so at most `limit` requests are
accepted in any `window` seconds, wherever the window starts. It costs memory in
proportion to the limit per active key, which is why the limits here count requests,
not events or bytes.

The storage reuses the caller's own Redis connection pool (the async client of
`redis`), so a limit check is one more round trip on connections that already exist,
and every replica of a service shares the same counters. Identifiers are hashed before
they become Redis keys: no e-mail address or API key is stored.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

KEY_PREFIX = "tenantry:rl"


def per_window(amount: int, seconds: int) -> RateLimitItem:
    """`amount` requests in any `seconds` seconds."""
    return RateLimitItemPerSecond(amount, seconds)


@dataclass(frozen=True)
class Refused:
    """A request over its limit, and when one of its slots frees (whole seconds, >= 1)."""

    retry_after: int


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class MovingWindow:
    """Counts requests per (bucket, identifier) in Redis; refuses those over the limit."""

    def __init__(self, redis: Redis, *, prefix: str = KEY_PREFIX) -> None:
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=prefix,
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        self._strategy = MovingWindowRateLimiter(storage)

    async def hit(self, limit: RateLimitItem, bucket: str, identifier: str) -> Refused | None:
        """Count one request; a `Refused` (not counted) when `limit` is already reached."""
        key = _digest(identifier)
        if await self._strategy.hit(limit, bucket, key):
            return None
        stats = await self._strategy.get_window_stats(limit, bucket, key)
        # reset_time: when the oldest request in the window leaves it, freeing a slot.
        return Refused(retry_after=max(1, math.ceil(stats.reset_time - time.time())))
