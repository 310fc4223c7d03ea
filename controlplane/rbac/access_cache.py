"""Members' access to their organisations, kept in memory between requests.

Every request in an organisation needs the caller's membership, role and grants: one
PostgreSQL transaction per request just to learn what rarely changes (measured: a
sixth of the CPU of an authorised read). So each process keeps what it read:

- Migration 0102 makes PostgreSQL announce every change to ``orgs``, ``memberships``
  and ``org_roles`` with ``NOTIFY tenantry_access, '<org id>'``. Notifications are sent
  when the changing transaction commits, to every listening process.
- ``AccessCache.run`` listens on a connection of its own and drops the organisation's
  entries when told. ``generation`` moves on with every notification, and an answer
  read from the database is kept only if it did not move while the read was in
  flight, so a change that commits during a read is never hidden by the older answer.
- While the listening connection is not up (start-up, database restart, network) the
  cache is off: every request reads the database, and the cache starts empty when the
  connection is back, because notifications sent meanwhile were lost.
- Entries also expire after ``max_age`` seconds, a bound on staleness should anything
  else go wrong. Only members are cached; a refused caller is read every time.

The process that served a change also forgets the organisation right after its commit
(deps.py), so a change is seen by its own next request at once, and by every other
process once the notification arrives, milliseconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import asyncpg

from controlplane import background, db

CHANNEL = "tenantry_access"
log = logging.getLogger("tenantry.controlplane.access")
T = TypeVar("T")


class AccessCache(Generic[T]):
    """(org id, user id) -> what a member may do, invalidated by PostgreSQL."""

    def __init__(
        self, *, max_age: float = 60.0, max_size: int = 50_000, first_delay: float = 0.1
    ) -> None:
        self.max_age = max_age
        self.max_size = max_size
        self.first_delay = first_delay  # reconnection backoff: doubles up to 5 s
        self.enabled = False  # True only while notifications are being received
        self.generation = 0
        self.connections = 0  # listening connections that came up
        # org id -> user id -> (expiry, value): an organisation is forgotten in one step.
        self._entries: dict[uuid.UUID, dict[uuid.UUID, tuple[float, T]]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    async def get(
        self, org_id: uuid.UUID, user_id: uuid.UUID, load: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        """The cached value, else ``load()``'s (kept when it is safe to keep)."""
        now = time.monotonic()
        if self.enabled:
            hit = self._entries.get(org_id, {}).get(user_id)
            if hit is not None and hit[0] > now:
                return hit[1]
        generation = self.generation
        value = await load()
        if value is not None and self.enabled and generation == self.generation:
            if self._size >= self.max_size:
                self._clear()
            members = self._entries.setdefault(org_id, {})
            self._size += user_id not in members
            members[user_id] = (now + self.max_age, value)
        return value

    def invalidate(self, org: str) -> None:
        """Forget one organisation (``org``: the notification's payload, its id)."""
        self.generation += 1
        try:
            org_id = uuid.UUID(org)
        except ValueError:  # not ours to interpret: forget everything
            self._clear()
            return
        self._size -= len(self._entries.pop(org_id, {}))

    def _clear(self) -> None:
        self._entries.clear()
        self._size = 0

    def _off(self) -> None:
        self.enabled = False
        self.generation += 1
        self._clear()

    async def run(self, database_url: str, *, ping_every: float = 10.0) -> None:
        """Listen for changes until cancelled, reconnecting with a capped backoff."""
        delay = self.first_delay
        while True:
            background.check_cancelled()
            up_before = self.connections
            try:
                await self._listen(database_url, ping_every=ping_every)
            except Exception as err:  # whatever it was, the cache is off until it listens again
                if self.connections != up_before:  # it was up: start the backoff again
                    delay = self.first_delay
                log.warning(
                    "access cache off, reconnecting in %.1f s: %s", delay, type(err).__name__
                )
            background.check_cancelled()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self, database_url: str, *, ping_every: float) -> None:
        """One listening connection's life: the cache is on from its first notification
        subscription until it is lost (raises then; the cache is off again)."""
        conn = await asyncpg.connect(database_url, timeout=10)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda *_: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self._off()  # whatever was cached may have missed notifications
            self.enabled = True
            self.connections += 1
            while not lost.is_set():
                background.check_cancelled()  # one lost in a library (background.py)
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that coincides with the connection's loss.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(ping_every):
                        await lost.wait()
                if not lost.is_set():  # a silent network loss shows up here
                    await db.check_alive(conn)
            raise ConnectionError("the listening connection was closed")
        finally:
            self._off()
            if not conn.is_closed():
                conn.terminate()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        self.invalidate(str(payload))
