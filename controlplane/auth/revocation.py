"""Session families known to be active, kept in memory between requests.

Every authenticated request asks whether its session (refresh-token family) is still
active: one Redis ``EXISTS fam:<family>`` per request, about a tenth of its CPU. So each
process remembers the families it found active:

- Whoever revokes a family (``SessionStore.revoke_family``, and the refresh-token reuse
  script) deletes ``fam:<family>`` and publishes the family on ``CHANNEL`` in the same
  step. ``ActiveFamilies.run`` is subscribed on a connection of its own and forgets the
  family when told; the revoking process also forgets it at once.
- ``generation`` moves on with every message (and every connect/disconnect), and an
  "active" answer read from Redis is kept only if it did not move while the read was in
  flight, so a revocation that arrives during a read is never hidden by the older answer.
- While the subscription is not confirmed (start-up, Redis restart, network) the cache
  is off: every check goes to Redis, and the cache starts empty once the subscription is
  back, because messages published meanwhile were lost.
- Entries expire after ``max_age`` seconds: a family that simply expires in Redis (no
  message) is noticed within that time. Only active families are cached.
- ``run`` ends when its task is cancelled, also when redis-py swallowed the
  cancellation (``background.check_cancelled`` at each turn).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from controlplane import background

CHANNEL = "tenantry:families:revoked"
log = logging.getLogger("tenantry.controlplane.sessions")


class ActiveFamilies:
    """family id -> when this process stops trusting that it is active."""

    def __init__(
        self,
        *,
        max_age: float = 30.0,
        max_size: int = 100_000,
        first_delay: float = 0.1,
        max_delay: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.max_size = max_size
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.enabled = False  # True only while the subscription is confirmed live
        self.generation = 0
        self.subscriptions = 0  # confirmed subscriptions so far
        self._clock = clock
        self._entries: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, family: object) -> bool:
        expiry = self._entries.get(family) if isinstance(family, str) else None
        return expiry is not None and expiry > self._clock()

    async def is_active(self, family: str, check: Callable[[], Awaitable[bool]]) -> bool:
        """True from memory when known active, else ``check()``'s answer (Redis)."""
        if self.enabled and family in self:
            return True
        generation = self.generation
        active = await check()
        if active and self.enabled and generation == self.generation:
            if len(self._entries) >= self.max_size:
                self._entries.clear()
            self._entries[family] = self._clock() + self.max_age
        return active

    def invalidate(self, family: str) -> None:
        """Forget one family (revoked here or announced on ``CHANNEL``)."""
        self.generation += 1
        self._entries.pop(family, None)

    def subscribed(self) -> None:
        """The subscription is confirmed: start caching, from empty."""
        self.subscriptions += 1
        self.generation += 1
        self._entries.clear()
        self.enabled = True

    def unsubscribed(self) -> None:
        """The subscription is gone: messages may be missed, so stop caching."""
        self.enabled = False
        self.generation += 1
        self._entries.clear()

    async def run(self, redis: Redis, *, ping_every: float = 5.0) -> None:
        """Follow revocations until cancelled, resubscribing with a capped backoff."""
        delay = self.first_delay
        while True:
            background.check_cancelled()
            confirmed = self.subscriptions
            try:
                await self._listen(redis, ping_every=ping_every)
            except Exception as err:
                if self.subscriptions != confirmed:  # it was up: start the backoff again
                    delay = self.first_delay
                log.warning(
                    "session cache off, resubscribing in %.1f s: %s", delay, type(err).__name__
                )
            background.check_cancelled()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)

    async def _listen(self, redis: Redis, *, ping_every: float) -> None:
        """One subscription's life: the cache is on from its confirmation until it is lost
        (raises then) or cancelled."""
        async with redis.pubsub() as pubsub:
            try:
                await self._follow(pubsub, ping_every=ping_every)
            finally:
                self.unsubscribed()

    async def _follow(self, pubsub: PubSub, *, ping_every: float) -> None:
        await pubsub.subscribe(CHANNEL)
        pinged = False
        while True:
            # redis-py sends each command under asyncio.wait_for, which on Python 3.11
            # can swallow our cancellation: stop here if it did (background.py).
            background.check_cancelled()
            message = await pubsub.get_message(timeout=ping_every)
            if message is None:  # quiet: a silent network loss shows up here
                if pinged:
                    raise ConnectionError("no answer to PING")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":  # also after a silent reconnect by the client library
            self.subscribed()
        elif kind == "message":
            data = message.get("data")
            self.invalidate(data.decode() if isinstance(data, bytes) else str(data))
