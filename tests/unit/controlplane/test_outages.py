"""What counts as a PostgreSQL or Redis outage (``outages.dependency_of``), without
servers: the drivers' errors come from connecting to a loopback port nobody listens on.
The caches' bounded-staleness fallback is tested with the caches
(test_active_families.py, test_access_cache.py)."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest
import redis.exceptions

from controlplane import outages
from controlplane.settings import Settings


def _closed_port() -> int:
    """A loopback port with no listener (bound and released: refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _caught(coro: object) -> BaseException:
    try:
        await coro  # type: ignore[misc]
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


async def test_asyncpg_failing_to_connect_is_postgres() -> None:
    port = _closed_port()
    exc = await _caught(asyncpg.connect(f"postgresql://u@127.0.0.1:{port}/db", timeout=5))
    assert isinstance(exc, OSError)  # a bare socket error, known by where it was raised
    assert outages.dependency_of(exc) == outages.POSTGRES


async def test_redis_failing_to_connect_is_redis() -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    client = outages.redis_client(settings)
    try:
        exc = await _caught(client.get("k"))
    finally:
        await client.aclose()
    assert isinstance(exc, redis.exceptions.ConnectionError)
    assert outages.dependency_of(exc) == outages.REDIS


async def test_socket_errors_and_timeouts_of_other_code_are_not_outages() -> None:
    async def elsewhere() -> None:
        async with asyncio.timeout(0):
            await asyncio.sleep(1)

    assert outages.dependency_of(await _caught(elsewhere())) is None
    refused = await _caught(asyncio.open_connection("127.0.0.1", _closed_port()))
    assert isinstance(refused, OSError)
    assert outages.dependency_of(refused) is None


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (redis.exceptions.TimeoutError("Timeout reading from socket"), outages.REDIS),
        (redis.exceptions.BusyLoadingError("loading"), outages.REDIS),
        (asyncpg.ConnectionDoesNotExistError("closed in the middle"), outages.POSTGRES),
        (asyncpg.CannotConnectNowError("the database system is starting up"), outages.POSTGRES),
        (asyncpg.AdminShutdownError("terminating connection"), outages.POSTGRES),
        (asyncpg.TooManyConnectionsError("too many clients"), outages.POSTGRES),
        (asyncpg.InterfaceError("connection is closed"), outages.POSTGRES),
        (outages.DependencyUnavailable(outages.REDIS), outages.REDIS),
        # Errors of a working server, or of misuse, are not outages.
        (redis.exceptions.ResponseError("WRONGTYPE"), None),
        (asyncpg.UniqueViolationError("duplicate key"), None),
        (asyncpg.DataError("invalid input for query argument"), None),
        (RuntimeError("a bug"), None),
    ],
)
def test_classes(exc: Exception, dependency: str | None) -> None:
    assert outages.dependency_of(exc) == dependency


def test_the_cause_chain_is_followed() -> None:
    def read_session() -> None:
        try:
            raise redis.exceptions.ConnectionError("refused")
        except redis.exceptions.ConnectionError as err:
            raise RuntimeError("while reading the session") from err

    with pytest.raises(RuntimeError) as caught:
        read_session()
    assert outages.dependency_of(caught.value) == outages.REDIS


def test_the_outage_answer_says_when_to_retry_and_names_no_server() -> None:
    err = outages.DependencyUnavailable(outages.POSTGRES)
    assert (err.status, err.code) == (503, "unavailable")
    assert err.headers == {"Retry-After": str(outages.RETRY_AFTER_SECONDS)}
    assert "postgres" not in err.message.lower()
    assert "redis" not in err.message.lower()
