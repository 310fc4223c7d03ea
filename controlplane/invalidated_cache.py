"""A per-process cache that others invalidate, with two transports for their messages.

Two caches spare every request a round trip: members' access (``rbac/access_cache.py``,
told of changes by PostgreSQL ``NOTIFY``) and active session families
(``auth/revocation.py``, told of revocations by Redis pub/sub). They are the same
mechanism, written once here; they differ only in the transport and in how a message
names what to forget. Before, each had its own copy, and the copies drifted (the fix
that restarts the reconnection backoff after a connection that was up was committed to
each separately).

The rules, the same for both:

- Entries are ``(group, key) -> value`` and a message forgets one group (an
  organisation; a family) or, when it names none the cache can read, everything.
- ``generation`` moves on with every message and every connect or disconnect. An answer
  read from the source is kept only if it did not move while the read was in flight,
  so a change announced during a read is never hidden by the older answer.
- While the transport is not confirmed live (start-up, server restart, network) the
  cache is off: every read goes to the source. It starts empty when the transport is
  back, because messages sent meanwhile were lost.
- What the cache held when its transport dropped, and what the source confirms while
  it is off, is *kept*, not served: it is the fallback of a read that may be served
  stale (``get(..., stale_ok=True)``) when the source itself cannot be reached
  (``outages.dependency_of``), until the entry's own expiry, never longer. That is the
  bounded-staleness policy of ``outages.py``; a refusal from the source, a message and
  a reconnection forget the kept entry as they forget a live one.
- Entries expire after ``max_age`` seconds, a bound on staleness should anything else
  go wrong; a full cache (``max_size``) starts again empty. ``None`` is never cached.
- ``run(transport)`` follows the messages until cancelled, reconnecting through
  tenacity: ``first_delay`` doubling up to ``max_delay``, and from ``first_delay``
  again after a connection that was up. It checks for a cancellation a library
  swallowed at each turn (``background.check_cancelled``).

A transport (``PostgresNotifications``, ``RedisChannel``) connects, calls
``connected()`` once the server confirms the subscription, ``notified(payload)`` for
each message, and raises when the connection is lost; it pings when the channel is
quiet so that a silent network loss shows up too. Both run against the real servers in
tests/integration/controlplane/test_invalidated_cache.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import tenacity
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from controlplane import background, db, outages

V = TypeVar("V")


def _forget_named(payload: str) -> Hashable | None:
    return payload


class _Table(Generic[V]):
    """group -> key -> (expiry, value), at most ``max_size`` entries (a full table starts
    again empty); a group is forgotten in one step."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._groups: dict[Hashable, dict[Hashable, tuple[float, V]]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def get(self, group: Hashable, key: Hashable, *, now: float) -> V | None:
        hit = self._groups.get(group, {}).get(key)
        return hit[1] if hit is not None and hit[0] > now else None

    def put(self, group: Hashable, key: Hashable, entry: tuple[float, V]) -> None:
        if self._size >= self.max_size:
            self.clear()
        entries = self._groups.setdefault(group, {})
        self._size += key not in entries
        entries[key] = entry

    def drop(self, group: Hashable, key: Hashable) -> None:
        entries = self._groups.get(group)
        if entries is not None and entries.pop(key, None) is not None:
            self._size -= 1

    def drop_group(self, group: Hashable) -> None:
        self._size -= len(self._groups.pop(group, {}))

    def entries(self) -> list[tuple[Hashable, Hashable, tuple[float, V]]]:
        return [(g, k, e) for g, keys in self._groups.items() for k, e in keys.items()]

    def clear(self) -> None:
        self._groups.clear()
        self._size = 0


class Transport(Protocol):
    """Where the invalidation messages come from."""

    async def follow(self, cache: InvalidatedCache[Any]) -> None:
        """Connect, call ``cache.connected()`` once subscribed and ``cache.notified``
        per message; raise when the connection is lost."""
        ...


class InvalidatedCache(Generic[V]):
    """(group, key) -> value, forgotten per group when a transport says so."""

    def __init__(
        self,
        *,
        max_age: float,
        max_size: int,
        first_delay: float = 0.1,
        max_delay: float = 5.0,
        group_of: Callable[[str], Hashable | None] = _forget_named,
        log: logging.Logger,
        what: str = "cache",
        clock: Callable[[], float] = time.monotonic,
        on_stale: Callable[[], None] | None = None,
    ) -> None:
        self.max_age = max_age
        self.max_size = max_size
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.enabled = False  # True only while the transport is confirmed live
        self.generation = 0
        self.connections = 0  # confirmed connections (subscriptions) so far
        self._group_of = group_of  # a message's payload -> the group (None: everything)
        self._log = log
        self._what = what
        self._clock = clock
        self._live: _Table[V] = _Table(max_size)  # served while the cache is on
        self._kept: _Table[V] = _Table(max_size)  # while it is off: stale-ok fallback
        self.stale_answers = 0  # reads answered from ``_kept`` so far
        self._on_stale = on_stale  # told of each (a metric)
        self._attempt: tenacity.RetryCallState | None = None

    def __len__(self) -> int:
        return len(self._live)

    def cached(self, group: Hashable, key: Hashable) -> V | None:
        """The live entry, if any (whether or not the cache is on)."""
        return self._live.get(group, key, now=self._clock())

    def kept(self, group: Hashable, key: Hashable) -> V | None:
        """The entry kept while the cache is off, if any and not expired."""
        return self._kept.get(group, key, now=self._clock())

    async def get(
        self,
        group: Hashable,
        key: Hashable,
        load: Callable[[], Awaitable[V | None]],
        *,
        stale_ok: bool = False,
    ) -> V | None:
        """The cached value, else ``load()``'s (kept when it is safe to keep).

        ``stale_ok``: when ``load()`` fails because its server is unavailable, answer
        with the entry kept while the cache is off, if there is one (bounded staleness,
        ``outages.py``); otherwise the failure propagates."""
        now = self._clock()
        if self.enabled:
            hit = self.cached(group, key)
            if hit is not None:
                return hit
        generation = self.generation
        try:
            value = await load()
        except Exception as exc:
            stale = self.kept(group, key) if stale_ok else None
            if stale is None or outages.dependency_of(exc) is None:
                raise
            self.stale_answers += 1
            if self._on_stale is not None:
                self._on_stale()
            return stale
        if generation != self.generation:
            return value  # a message or a reconnection came during the read: keep nothing
        table = self._live if self.enabled else self._kept
        if value is not None:
            table.put(group, key, (now + self.max_age, value))
        else:
            table.drop(group, key)  # the source refuses it now: no fallback either
        return value

    def invalidate(self, group: Hashable | None) -> None:
        """Forget one group (None: everything), live and kept."""
        self.generation += 1
        if group is None:
            self._live.clear()
            self._kept.clear()
        else:
            self._live.drop_group(group)
            self._kept.drop_group(group)

    # -- what a transport calls ---------------------------------------------------------
    def notified(self, payload: str) -> None:
        self.invalidate(self._group_of(payload))

    def connected(self) -> None:
        """The subscription is confirmed: start caching, from empty (nothing kept
        either: messages sent while it was down are lost)."""
        self.connections += 1
        self.generation += 1
        self._live.clear()
        self._kept.clear()
        self.enabled = True
        if self._attempt is not None:
            # The connection was up: a loss from here on starts the backoff again at
            # first_delay (tenacity's exponential wait counts from attempt 1).
            self._attempt.attempt_number = 1

    def disconnected(self) -> None:
        """The subscription is gone: messages may be missed, so stop serving from
        memory. The live entries are kept, until their own expiry, as the fallback of
        stale-ok reads while the source cannot be reached."""
        self.enabled = False
        self.generation += 1
        for group, key, entry in self._live.entries():
            self._kept.put(group, key, entry)
        self._live.clear()

    # -- following a transport ----------------------------------------------------------
    async def run(self, transport: Transport) -> None:
        """Follow ``transport`` until cancelled, reconnecting with a capped backoff."""
        retrying = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=self.first_delay, max=self.max_delay),
            retry=tenacity.retry_if_exception_type(Exception),  # never a cancellation
            before_sleep=self._reconnecting,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self._attempt = attempt.retry_state
                background.check_cancelled()  # one lost in a library (background.py)
                try:
                    await transport.follow(self)
                finally:
                    self.disconnected()
                raise ConnectionError("the transport ended")

    def _reconnecting(self, state: tenacity.RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self._log.warning(
            "%s off, reconnecting in %.1f s: %s", self._what, delay, type(err).__name__
        )


class PostgresNotifications:
    """``LISTEN channel`` on a connection of its own; the ``NOTIFY`` payload is the
    message. Subscribed once ``LISTEN`` has run; pinged (``db.check_alive``) when quiet."""

    def __init__(self, database_url: str, channel: str, *, ping_every: float = 10.0) -> None:
        self.database_url = database_url
        self.channel = channel
        self.ping_every = ping_every

    async def follow(self, cache: InvalidatedCache[Any]) -> None:
        conn = await asyncpg.connect(self.database_url, timeout=10)
        lost = asyncio.Event()

        def notified(_conn: Any, _pid: int, _channel: str, payload: object) -> None:
            cache.notified(str(payload))

        try:
            conn.add_termination_listener(lambda *_: lost.set())
            await conn.add_listener(self.channel, notified)
            cache.connected()
            while not lost.is_set():
                background.check_cancelled()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that coincides with the connection's loss.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ping_every):
                        await lost.wait()
                if not lost.is_set():  # a silent network loss shows up here
                    await db.check_alive(conn)
            raise ConnectionError("the listening connection was closed")
        finally:
            if not conn.is_closed():
                conn.terminate()


class RedisChannel:
    """``SUBSCRIBE channel`` on a pub/sub connection of its own; each message's data is
    the message. Subscribed on the server's confirmation (also after a reconnect that
    redis-py made by itself); a ``PING`` when quiet, and lost if that gets no answer."""

    def __init__(self, redis: Redis, channel: str, *, ping_every: float = 5.0) -> None:
        self.redis = redis
        self.channel = channel
        self.ping_every = ping_every

    async def follow(self, cache: InvalidatedCache[Any]) -> None:
        async with self.redis.pubsub() as pubsub:
            await self._follow(pubsub, cache)

    async def _follow(self, pubsub: PubSub, cache: InvalidatedCache[Any]) -> None:
        await pubsub.subscribe(self.channel)
        pinged = False
        while True:
            # redis-py sends each command under asyncio.wait_for, which on Python 3.11
            # can swallow our cancellation: stop here if it did (background.py).
            background.check_cancelled()
            message = await pubsub.get_message(timeout=self.ping_every)
            if message is None:  # quiet: a silent network loss shows up here
                if pinged:
                    raise ConnectionError("no answer to PING")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            kind = message.get("type")
            if kind == "subscribe":
                cache.connected()
            elif kind == "message":
                data = message.get("data")
                cache.notified(data.decode() if isinstance(data, bytes) else str(data))
