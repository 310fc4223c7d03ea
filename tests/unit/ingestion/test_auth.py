"""API key rules, the static validator, and the introspection cache's TTL logic.

The cache is tested with an in-memory look-up function and an injected clock;
the HTTP call to the control plane is left to the integration with the control
plane's introspection endpoint, which does not exist yet.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from ingestion import auth
from ingestion.settings import key_digest
from tenantry.internal_api import Introspection

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def info(**changes: object) -> auth.KeyInfo:
    base: dict[str, object] = {
        "active": True,
        "tenant": "acme",
        "org_id": "org-1",
        "scopes": frozenset({"events:write"}),
        "expires_at": None,
    }
    base.update(changes)
    return auth.KeyInfo(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key_info", "status", "reason"),
    [
        (None, 401, "unknown"),
        (info(active=False), 401, "inactive"),
        (info(expires_at=NOW), 401, "expired"),
        (info(tenant="other"), 403, "another tenant"),
        (info(scopes=frozenset({"dashboards:read"})), 403, "events:write"),
    ],
)
def test_authorize_refuses(key_info: auth.KeyInfo | None, status: int, reason: str) -> None:
    with pytest.raises(auth.KeyRejected) as caught:
        auth.authorize(key_info, tenant="acme", now=NOW)
    assert caught.value.status == status
    assert reason in caught.value.reason


def test_authorize_accepts_a_writing_key_of_this_tenant() -> None:
    good = info(expires_at=NOW + dt.timedelta(seconds=1))
    assert auth.authorize(good, tenant="acme", now=NOW) is good


async def test_static_validator_knows_keys_by_digest_only() -> None:
    validator = auth.StaticKeyValidator(frozenset({key_digest("k1")}), tenant="acme")
    found = await validator.lookup("k1")
    assert found is not None
    assert found.tenant == "acme"
    assert auth.WRITE_SCOPE in found.scopes
    assert await validator.lookup("k2") is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Source:
    """The control plane's answers, in memory: key -> KeyInfo (None: unknown)."""

    def __init__(self, answers: dict[str, auth.KeyInfo | None]) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self, key: str) -> auth.KeyInfo | None:
        self.calls.append(key)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise auth.KeyServiceUnavailable("down")
        return self.answers.get(key)


def cache(source: Source, clock: Clock) -> auth.CachingValidator:
    return auth.CachingValidator(
        source, ttl=60, negative_ttl=5, max_entries=2, clock=clock, wall_clock=lambda: NOW
    )


async def test_positive_answers_are_cached_for_the_ttl() -> None:
    clock, source = Clock(), Source({"good": info()})
    validator = cache(source, clock)
    assert await validator.lookup("good") == info()
    clock.now = 59.9
    assert await validator.lookup("good") == info()
    assert source.calls == ["good"]
    clock.now = 60.1
    await validator.lookup("good")
    assert source.calls == ["good", "good"]


async def test_negative_answers_live_shorter() -> None:
    clock, source = Clock(), Source({})
    validator = cache(source, clock)
    assert await validator.lookup("bad") is None
    clock.now = 4.9
    assert await validator.lookup("bad") is None
    clock.now = 5.1
    assert await validator.lookup("bad") is None
    assert source.calls == ["bad", "bad"]


async def test_a_key_is_not_cached_past_its_expiry() -> None:
    clock = Clock()
    source = Source({"soon": info(expires_at=NOW + dt.timedelta(seconds=10))})
    validator = cache(source, clock)
    await validator.lookup("soon")
    clock.now = 10.5
    await validator.lookup("soon")
    assert source.calls == ["soon", "soon"]


async def test_failures_are_not_cached_and_concurrent_lookups_share_one_call() -> None:
    clock, source = Clock(), Source({"good": info()})
    validator = cache(source, clock)
    source.fail = True
    with pytest.raises(auth.KeyServiceUnavailable):
        await validator.lookup("good")
    source.fail = False
    source.gate = asyncio.Event()
    lookups = [asyncio.create_task(validator.lookup("good")) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*lookups) == [info()] * 5
    assert source.calls == ["good", "good"]


async def test_the_cache_is_bounded_least_recently_used_first() -> None:
    clock, source = Clock(), Source({"a": info(), "b": info(), "c": info()})
    validator = cache(source, clock)
    for key in ("a", "b", "a", "c", "a", "b"):
        await validator.lookup(key)
    assert source.calls == ["a", "b", "c", "b"]


def test_introspection_answers_are_read_from_the_contract() -> None:
    answer = Introspection.model_validate_json(
        b'{"active": true, "tenant": "acme", "org_id": "o1", "scopes": ["events:write"],'
        b' "expires_at": "2026-12-01T00:00:00Z"}'
    )
    parsed = auth.key_info(answer)
    assert parsed == info(org_id="o1", expires_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    naive = answer.model_copy(update={"expires_at": dt.datetime(2026, 12, 1)})
    assert auth.key_info(naive) == parsed  # an expiry without a zone is UTC
    assert auth.key_info(Introspection(active=False)) is None
