"""AccessCache's own rules (no database): when it keeps, serves and forgets answers."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from controlplane.rbac.access_cache import AccessCache


class Loads:
    def __init__(self, value: str | None) -> None:
        self.value = value
        self.count = 0

    async def __call__(self) -> str | None:
        self.count += 1
        return self.value


async def test_nothing_is_kept_while_off() -> None:
    cache: AccessCache[str] = AccessCache()
    load = Loads("viewer")
    org, user = uuid.uuid4(), uuid.uuid4()
    assert await cache.get(org, user, load) == "viewer"
    assert await cache.get(org, user, load) == "viewer"
    assert (load.count, len(cache)) == (2, 0)


async def test_refusals_are_not_kept_and_answers_expire() -> None:
    cache: AccessCache[str] = AccessCache(max_age=0.05)
    cache.enabled = True
    org, user = uuid.uuid4(), uuid.uuid4()
    refused = Loads(None)
    assert await cache.get(org, user, refused) is None
    assert await cache.get(org, user, refused) is None
    assert refused.count == 2
    load = Loads("admin")
    await cache.get(org, user, load)
    await cache.get(org, user, load)
    assert load.count == 1
    await asyncio.sleep(0.06)
    await cache.get(org, user, load)
    assert load.count == 2, "read again once the entry is older than max_age"


async def test_a_full_cache_starts_over() -> None:
    cache: AccessCache[str] = AccessCache(max_size=3)
    cache.enabled = True
    for _ in range(3):
        await cache.get(uuid.uuid4(), uuid.uuid4(), Loads("viewer"))
    assert len(cache) == 3
    await cache.get(uuid.uuid4(), uuid.uuid4(), Loads("viewer"))
    assert len(cache) == 1


async def test_invalidation_is_per_organisation_and_unknown_payloads_clear_all() -> None:
    cache: AccessCache[str] = AccessCache()
    cache.enabled = True
    org, other, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await cache.get(org, user, Loads("viewer"))
    await cache.get(other, user, Loads("viewer"))
    cache.notified(str(org))  # what NOTIFY says: the organisation's id
    assert len(cache) == 1
    cache.notified("not-a-uuid")
    assert len(cache) == 0


async def test_while_postgres_is_down_a_read_gets_what_was_confirmed_per_organisation() -> None:
    cache: AccessCache[str] = AccessCache()
    cache.connected()
    org, other, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await cache.get(org, user, Loads("viewer"))
    await cache.get(other, user, Loads("admin"))
    cache.disconnected()  # the LISTEN connection went with the server

    async def down() -> str:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")

    assert await cache.get(org, user, down, stale_ok=True) == "viewer"
    with pytest.raises(asyncpg.CannotConnectNowError):
        await cache.get(org, user, down)  # a write: never from memory
    cache.invalidate(other)  # a change this process made itself
    with pytest.raises(asyncpg.CannotConnectNowError):
        await cache.get(other, user, down, stale_ok=True)
    assert cache.stale_answers == 1
