"""The one self-invalidating cache (controlplane/invalidated_cache.py) with each of its
two transports against the real server: PostgreSQL LISTEN/NOTIFY and Redis pub/sub.
The same rules must hold over both: a message forgets its group and nothing else, a
lost connection turns the cache off and empty until it is back, and the reconnection
backoff doubles while nothing answers and starts again after a connection that was up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest
from redis.asyncio import Redis

from controlplane import background
from controlplane.invalidated_cache import (
    InvalidatedCache,
    PostgresNotifications,
    RedisChannel,
    Transport,
)
from tests.support.wait import scaled, until

CHANNEL = "tenantry_test_invalidation"
log = logging.getLogger("tenantry.test.invalidated")


@dataclass
class Server:
    """One transport's server: how to announce a change and how to cut the connection."""

    transport: Callable[[], Transport]
    announce: Callable[[str], Awaitable[None]]
    cut: Callable[[], Awaitable[int]]


@pytest.fixture(params=["postgres", "redis"])
async def server(
    request: pytest.FixtureRequest, database: str, redis_db: str
) -> AsyncIterator[Server]:
    if request.param == "postgres":
        url = database
        conn = await asyncpg.connect(url)

        async def notify(payload: str) -> None:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

        async def terminate() -> int:
            return int(
                await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )

        try:
            yield Server(
                lambda: PostgresNotifications(url, CHANNEL, ping_every=0.5), notify, terminate
            )
        finally:
            await conn.close(timeout=scaled(30))
    else:
        admin = Redis.from_url(redis_db)
        follower = Redis.from_url(redis_db)

        async def publish(payload: str) -> None:
            await admin.publish(CHANNEL, payload)

        async def kill() -> int:
            return int(await admin.client_kill_filter(_type="pubsub"))

        try:
            yield Server(lambda: RedisChannel(follower, CHANNEL, ping_every=0.5), publish, kill)
        finally:
            await follower.aclose()
            await admin.aclose()


@contextlib.asynccontextmanager
async def following(
    cache: InvalidatedCache[str], transport: Transport, *, wait_up: bool = True
) -> AsyncIterator[None]:
    task = asyncio.create_task(cache.run(transport))
    try:
        if wait_up:
            await until(lambda: cache.enabled, what="the cache subscribed")
        yield
    finally:
        assert await background.stop(task, within=scaled(10), what="cache")
        assert not cache.enabled


def new_cache(*, first_delay: float = 0.1, max_delay: float = 5.0) -> InvalidatedCache[str]:
    return InvalidatedCache(
        max_age=3600, max_size=100, first_delay=first_delay, max_delay=max_delay, log=log
    )


def _value(value: str) -> Callable[[], Awaitable[str | None]]:
    async def load() -> str | None:
        return value

    return load


async def test_a_message_forgets_its_group_and_nothing_else(server: Server) -> None:
    cache = new_cache()
    async with following(cache, server.transport()):
        await cache.get("org-a", "u1", _value("viewer"))
        await cache.get("org-a", "u2", _value("viewer"))
        await cache.get("org-b", "u1", _value("owner"))
        assert len(cache) == 3
        await server.announce("org-a")
        await until(lambda: len(cache) == 1, what="org-a forgotten")
        assert cache.cached("org-b", "u1") == "owner"
        assert await cache.get("org-a", "u1", _value("admin")) == "admin"  # read again


async def test_a_lost_connection_is_off_and_empty_until_it_is_back(server: Server) -> None:
    cache = new_cache(first_delay=0.5)
    async with following(cache, server.transport()):
        await cache.get("org-a", "u1", _value("viewer"))
        assert await server.cut() >= 1
        await until(lambda: not cache.enabled, what="the cache off")
        assert len(cache) == 0
        await server.announce("org-a")  # announced to nobody: lost
        assert await cache.get("org-a", "u1", _value("admin")) == "admin"
        assert len(cache) == 0, "nothing is kept while messages may be missed"
        await until(lambda: cache.enabled, what="the cache back on")
        assert cache.connections == 2
        await cache.get("org-a", "u1", _value("admin"))
        assert len(cache) == 1
        await server.announce("org-a")  # and messages arrive again
        await until(lambda: len(cache) == 0, what="the message after reconnecting")


DELAY = re.compile(r"reconnecting in ([0-9.]+) s")


def _delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [
        float(m.group(1))
        for r in caplog.records
        if r.name == log.name and (m := DELAY.search(r.getMessage()))
    ]


async def test_the_backoff_starts_again_after_a_connection_that_was_up(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=log.name)
    cache = new_cache(first_delay=0.2)
    async with following(cache, server.transport()):
        for n in range(2, 5):
            assert await server.cut() >= 1

            def back(n: int = n) -> bool:
                return cache.enabled and cache.connections == n

            await until(back, what=f"connection {n} up")
    assert _delays(caplog) == [0.2, 0.2, 0.2]  # never 0.4, 0.8: each loss came after an up


class _Refused:
    """A transport whose server is not there: a port nobody listens on."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.attempts = 0

    async def follow(self, cache: InvalidatedCache[str]) -> None:  # noqa: ARG002
        self.attempts += 1
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.close()  # pragma: no cover - nothing listens there


async def test_the_backoff_doubles_up_to_its_cap_while_nothing_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=log.name)
    cache = new_cache(first_delay=0.1, max_delay=0.4)
    refused = _Refused()
    async with following(cache, refused, wait_up=False):
        await until(lambda: refused.attempts >= 6, what="six attempts")
        assert not cache.enabled
    assert _delays(caplog)[:5] == [0.1, 0.2, 0.4, 0.4, 0.4]
