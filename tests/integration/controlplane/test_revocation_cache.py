"""The in-process cache of active session families against a real Redis: two stores with
their own client, cache and subscriber stand for two worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from controlplane import background
from controlplane.auth import revocation
from controlplane.auth.repository import SessionStore
from controlplane.auth.revocation import ActiveFamilies
from tests.support.wait import scaled, until


@dataclass
class Worker:
    store: SessionStore
    cache: ActiveFamilies


@contextlib.asynccontextmanager
async def worker(url: str, *, first_delay: float = 0.1) -> AsyncIterator[Worker]:
    """One process's store and cache. Entries never expire during a test (max_age), so
    only a published revocation can make the cache forget a family."""
    redis = Redis.from_url(url)
    cache = ActiveFamilies(first_delay=first_delay, max_age=3600)
    task = asyncio.create_task(cache.run(revocation.subscriber(redis)))
    try:
        await until(_is(lambda: cache.enabled), what="the cache subscribed")
        yield Worker(SessionStore(redis, ttl=600, code_ttl=60, cache=cache), cache)
    finally:
        assert await background.stop(task, within=scaled(10), what="session cache")
        assert not cache.enabled
        await redis.aclose()


def _is(test: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return test()

    return condition


def _inactive(store: SessionStore, family: str) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return not await store.family_active(family)

    return condition


@pytest.fixture
async def admin(redis_db: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_db)
    yield client
    await client.aclose()


async def test_revocation_in_one_process_reaches_the_other(redis_db: str, admin: Redis) -> None:
    async with worker(redis_db) as a, worker(redis_db) as b:
        family = await a.store.new_family(uuid.uuid4())
        assert await b.store.family_active(family)
        assert family in b.cache
        # Served from memory: a DEL that announces nothing goes unnoticed (for max_age).
        await admin.delete(f"fam:{family}")
        assert await b.store.family_active(family)

        await a.store.revoke_family(family)
        assert not await a.store.family_active(family)  # at once where it was revoked
        await until(_inactive(b.store, family), what="the revocation seen by B")
        assert family not in b.cache


async def test_refresh_token_reuse_reaches_the_other_process(redis_db: str) -> None:
    async with worker(redis_db) as a, worker(redis_db) as b:
        user = uuid.uuid4()
        family = await a.store.new_family(user)
        token = await a.store.issue(family=family, user_id=str(user), client_id="c")
        assert await a.store.family_active(family)
        assert await b.store.family_active(family)
        assert family in a.cache
        assert family in b.cache

        assert (await a.store.use(token)).outcome == "ok"
        reuse = await a.store.use(token)
        assert (reuse.outcome, reuse.family) == ("reuse", family)
        assert family not in a.cache
        await until(_inactive(b.store, family), what="the revocation seen by B")


async def test_ending_every_session_reaches_the_other_process(redis_db: str) -> None:
    async with worker(redis_db) as a, worker(redis_db) as b:
        user, someone = uuid.uuid4(), uuid.uuid4()
        mine = [await a.store.new_family(user), await b.store.new_family(user)]
        theirs = await a.store.new_family(someone)
        for family in [*mine, theirs]:
            assert await a.store.family_active(family)
            assert await b.store.family_active(family)
            assert family in b.cache

        assert sorted(await a.store.revoke_all(user)) == sorted(mine)
        for family in mine:
            assert not await a.store.family_active(family)  # at once where it was revoked
            await until(_inactive(b.store, family), what="the revocation seen by B")
        assert await b.store.family_active(theirs)
        assert await a.store.revoke_all(user) == []  # nothing left to end


async def test_a_lost_subscription_turns_the_cache_off_until_it_is_back(
    redis_db: str, admin: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tenantry.controlplane.sessions")
    # A slow first retry keeps B's subscription down long enough to look at it.
    async with worker(redis_db) as a, worker(redis_db, first_delay=0.5) as b:
        family = await a.store.new_family(uuid.uuid4())
        assert await b.store.family_active(family)
        assert family in b.cache
        subscriptions = b.cache.connections

        assert await admin.client_kill_filter(_type="pubsub") >= 2  # A's and B's
        await admin.delete(f"fam:{family}")  # announced to nobody
        await until(_is(lambda: not b.cache.enabled), what="B's cache off")
        assert len(b.cache) == 0
        assert not await b.store.family_active(family)  # asked Redis

        other = await a.store.new_family(uuid.uuid4())
        assert await b.store.family_active(other)
        assert other not in b.cache  # nothing is cached while the subscription is down

        await until(_is(lambda: b.cache.enabled), what="B's cache back on")
        assert b.cache.connections == subscriptions + 1
        assert await b.store.family_active(other)
        assert other in b.cache
        await a.store.revoke_family(other)  # and revocations arrive again
        await until(_inactive(b.store, other), what="the revocation seen by B")

    lost = [r for r in caplog.records if r.name == "tenantry.controlplane.sessions"]
    assert lost
    assert all(r.levelno == logging.WARNING for r in lost)
    assert not any(family in r.getMessage() or other in r.getMessage() for r in lost)


async def test_a_revocation_during_the_redis_read_is_not_overwritten(redis_db: str) -> None:
    async with worker(redis_db) as a:
        cache = a.cache
        calls = 0

        async def check_then_revoked() -> bool:
            nonlocal calls
            calls += 1
            cache.invalidate("f1")  # what the subscriber does on a message
            return True  # the answer read before the revocation

        assert await cache.is_active("f1", check_then_revoked)
        assert "f1" not in cache
        assert await cache.is_active("f1", check_then_revoked)
        assert calls == 2  # still asked Redis: the stale answer was not kept

        async def check() -> bool:
            return True

        assert await cache.is_active("f1", check)
        assert "f1" in cache  # the same answer without a revocation in flight is kept


async def test_a_published_revocation_during_the_read_is_not_overwritten(
    redis_db: str, admin: Redis
) -> None:
    async with worker(redis_db) as a, worker(redis_db) as b:
        family = await a.store.new_family(uuid.uuid4())

        async def slow_exists() -> bool:
            answer = bool(await admin.exists(f"fam:{family}"))
            generation = b.cache.generation
            await a.store.revoke_family(family)  # lands while B's read is "in flight"
            await until(_is(lambda: b.cache.generation != generation), what="the message at B")
            return answer

        assert await b.cache.is_active(family, slow_exists)  # the stale answer...
        assert family not in b.cache  # ...is not kept
        assert not await b.store.family_active(family)


async def test_the_subscriber_stops_when_a_library_swallowed_its_cancellation(
    redis_db: str,
) -> None:
    """redis-py sends each command under asyncio.wait_for, which on Python 3.11 drops a
    cancellation that arrives as the send completes (controlplane/background.py); the
    app's shutdown then waited for this task forever. Cancelled once at many points of
    its subscribe and ping cycle, it must end every time."""
    redis = Redis.from_url(redis_db)
    try:
        for attempt in range(150):
            cache = ActiveFamilies(max_age=3600)
            task = asyncio.create_task(cache.run(revocation.subscriber(redis, ping_every=0.01)))
            await asyncio.sleep((attempt % 50) * 0.0006)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=scaled(10))
            assert done, f"still running {scaled(10):g} s after its cancel (attempt {attempt})"
            assert task.cancelled()
            assert not cache.enabled
    finally:
        await redis.aclose()
