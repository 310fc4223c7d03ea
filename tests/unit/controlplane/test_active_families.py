"""The rules of the active-session-family cache, without Redis: a fake clock, and
``connected``/``disconnected`` called as the subscriber would."""

from __future__ import annotations

from controlplane.auth.revocation import ActiveFamilies


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Check:
    """A stand-in for the Redis EXISTS, counting how often it is asked."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.answer


def cache(clock: Clock, *, max_size: int = 100) -> ActiveFamilies:
    families = ActiveFamilies(max_age=0.5, max_size=max_size, clock=clock)
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
    families.disconnected()  # lost: forget everything, stop caching
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
