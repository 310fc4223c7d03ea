"""Session families known to be active, kept in memory between requests.

Every authenticated request asks whether its session (refresh-token family) is still
active: one Redis ``EXISTS fam:<family>`` per request, about a tenth of its CPU. So each
process remembers the families it found active, in an ``InvalidatedCache``
(``controlplane/invalidated_cache.py``: its rules on staleness, reads in flight, and
being off while the transport is down) fed by Redis pub/sub:

- Whoever revokes a family (``SessionStore.revoke_family``, and the refresh-token reuse
  script) deletes ``fam:<family>`` and publishes the family on ``CHANNEL`` in the same
  step. The cache is subscribed on a connection of its own (``subscriber``) and
  forgets the family when told; the revoking process also forgets it at once.
- Entries expire after ``max_age`` seconds: a family that simply expires in Redis (no
  message) is noticed within that time. Only active families are cached.
- While Redis cannot be reached, a read (``stale_ok``) of a family confirmed active
  within ``max_age`` (30 s) is still accepted; writes, and families not confirmed that
  recently, are refused with a 503 (the bounded-staleness policy of ``outages.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from controlplane.invalidated_cache import InvalidatedCache, RedisChannel

CHANNEL = "tenantry:families:revoked"
log = logging.getLogger("tenantry.controlplane.sessions")


class ActiveFamilies(InvalidatedCache[bool]):
    """family id -> active (only True is kept), until this process stops trusting it."""

    def __init__(
        self,
        *,
        max_age: float = 30.0,
        max_size: int = 100_000,
        first_delay: float = 0.1,
        max_delay: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_stale: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            max_age=max_age,
            max_size=max_size,
            first_delay=first_delay,
            max_delay=max_delay,
            log=log,
            what="session cache",
            clock=clock,
            on_stale=on_stale,
        )

    def __contains__(self, family: object) -> bool:
        return isinstance(family, str) and self.cached(family, family) is not None

    async def is_active(
        self, family: str, check: Callable[[], Awaitable[bool]], *, stale_ok: bool = False
    ) -> bool:
        """True from memory when known active, else ``check()``'s answer (Redis).
        ``stale_ok``: a read, which Redis being unreachable may answer from what was
        confirmed within ``max_age`` (``InvalidatedCache.get``, ``outages.py``)."""

        async def load() -> bool | None:
            return True if await check() else None  # an inactive family is not kept

        return await self.get(family, family, load, stale_ok=stale_ok) is True


def subscriber(redis: Redis, *, ping_every: float = 5.0) -> RedisChannel:
    """The transport of ``ActiveFamilies.run``: ``SUBSCRIBE`` to ``CHANNEL``."""
    return RedisChannel(redis, CHANNEL, ping_every=ping_every)
