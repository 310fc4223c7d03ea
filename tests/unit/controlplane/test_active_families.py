"""The rules of the active-session-family cache, without Redis: a fake clock, and
``connected``/``disconnected`` called as the subscriber would."""

from __future__ import annotations

import pytest
import redis.exceptions

from controlplane.auth.revocation import ActiveFamilies


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Check:
    """A stand-in for the Redis EXISTS, counting how often it is asked; ``down``: Redis
    cannot be reached (the error redis-py raises then)."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.down = False
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        if self.down:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        return self.answer


def cache(clock: Clock, *, max_size: int = 100, max_age: float = 0.5) -> ActiveFamilies:
    families = ActiveFamilies(max_age=max_age, max_size=max_size, clock=clock)
    families.connected()
    return families


async def test_an_active_family_is_trusted_for_max_age_only() -> None:
    clock, check = Clock(), Check()
    families = cache(clock)
    assert await families.is_active("f", check)
    clock.now += 0.49
    assert await families.is_active("f", check)
    assert check.calls == 1
    clock.now += 0.02  # past max_age: asked again
    assert "f" not in families
    assert await families.is_active("f", check)
    assert check.calls == 2


async def test_inactive_families_are_never_cached() -> None:
    check = Check(answer=False)
    families = cache(Clock())
    assert not await families.is_active("f", check)
    assert not await families.is_active("f", check)
    assert check.calls == 2
    assert len(families) == 0


async def test_a_full_cache_starts_again_empty() -> None:
    check = Check()
    families = cache(Clock(), max_size=3)
    for family in ("a", "b", "c"):
        assert await families.is_active(family, check)
    assert len(families) == 3
    assert await families.is_active("d", check)  # full: cleared, then "d" kept
    assert len(families) == 1
    assert "d" in families
    assert "a" not in families
    calls = check.calls
    assert await families.is_active("a", check)
    assert check.calls == calls + 1


async def test_nothing_is_cached_without_a_subscription() -> None:
    check = Check()
    families = ActiveFamilies(clock=Clock())
    assert await families.is_active("f", check)
    assert await families.is_active("f", check)
    assert check.calls == 2
    families.connected()
    assert await families.is_active("f", check)
    assert "f" in families
    families.disconnected()  # lost: serve nothing from memory, stop caching
    assert not families.enabled
    assert len(families) == 0
    assert await families.is_active("f", check)
    assert check.calls == 4


async def test_invalidate_forgets_one_family() -> None:
    check = Check()
    families = cache(Clock())
    assert await families.is_active("a", check)
    assert await families.is_active("b", check)
    families.invalidate("a")
    assert "a" not in families
    assert "b" in families


async def test_a_resubscription_during_the_read_discards_the_answer() -> None:
    families = cache(Clock())

    async def check() -> bool:
        families.disconnected()
        families.connected()  # back, but messages may have been lost meanwhile
        return True

    assert await families.is_active("f", check)
    assert families.enabled
    assert "f" not in families


# -- bounded staleness while Redis cannot be reached (controlplane/outages.py) ---------


async def test_a_read_is_answered_from_what_was_confirmed_while_redis_is_down() -> None:
    check = Check()
    families = cache(Clock(), max_age=30.0)
    assert await families.is_active("f", check)
    families.disconnected()
    assert len(families) == 0, "nothing is served from memory once the channel is lost"
    check.down = True
    assert await families.is_active("f", check, stale_ok=True)
    assert families.stale_answers == 1
    # A write is never answered from it.
    with pytest.raises(redis.exceptions.ConnectionError):
        await families.is_active("f", check)
    # Nor a family the cache never had.
    with pytest.raises(redis.exceptions.ConnectionError):
        await families.is_active("other", check, stale_ok=True)


async def test_the_fallback_ends_with_the_entry_max_age() -> None:
    clock, check = Clock(), Check()
    families = cache(clock, max_age=30.0)
    assert await families.is_active("f", check)
    families.disconnected()
    check.down = True
    clock.now += 29.9
    assert await families.is_active("f", check, stale_ok=True)
    clock.now += 0.2
    with pytest.raises(redis.exceptions.ConnectionError):
        await families.is_active("f", check, stale_ok=True)


async def test_only_an_outage_falls_back() -> None:
    families = cache(Clock(), max_age=30.0)
    assert await families.is_active("f", Check())
    families.disconnected()

    async def broken() -> bool:
        raise RuntimeError("a bug, not an outage")

    with pytest.raises(RuntimeError):
        await families.is_active("f", broken, stale_ok=True)


async def test_a_family_redis_refuses_while_the_channel_is_down_is_not_kept() -> None:
    check = Check()
    families = cache(Clock(), max_age=30.0)
    assert await families.is_active("f", check)
    families.disconnected()
    check.answer = False  # revoked, seen by a read while the channel was down
    assert not await families.is_active("f", check)
    check.down = True
    with pytest.raises(redis.exceptions.ConnectionError):
        await families.is_active("f", check, stale_ok=True)


async def test_invalidation_and_reconnection_forget_the_fallback() -> None:
    check = Check()
    families = cache(Clock(), max_age=30.0)
    for family in ("a", "b"):
        assert await families.is_active(family, check)
    families.disconnected()
    families.invalidate("a")  # revoked in this process
    families.connected()  # back: messages sent meanwhile were lost
    families.disconnected()
    check.down = True
    for family in ("a", "b"):
        with pytest.raises(redis.exceptions.ConnectionError):
            await families.is_active(family, check, stale_ok=True)


async def test_answers_confirmed_while_the_channel_is_down_are_kept_not_served() -> None:
    check = Check()
    families = cache(Clock(), max_age=30.0)
    families.disconnected()
    assert await families.is_active("f", check)
    assert await families.is_active("f", check)
    assert check.calls == 2
    check.down = True
    assert await families.is_active("f", check, stale_ok=True)
