"""API keys of the wrong shape never reach the control plane, and a key it refuses as
malformed is a 401 for the client, not an outage (503) to retry for ever.

The control plane's introspection endpoint is played by a real aiohttp server on
loopback that counts the requests it gets and answers what each test sets."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from ingestion import auth
from tenantry import contract, internal_api
from tenantry.internal_client import InternalClient
from tests.support.loopback import serving


@dataclass
class Upstream:
    url: str
    status: int = 404
    calls: list[str] = field(default_factory=list)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream(url="")

    async def introspect(request: web.Request) -> web.Response:
        state.calls.append((await request.json())["key"])
        return web.json_response({"detail": "no"}, status=state.status)

    app = web.Application()
    app.router.add_post(internal_api.INTROSPECT_PATH, introspect)
    async with serving(app) as url:
        state.url = url
        yield state


@pytest.fixture
async def internal(upstream: Upstream) -> AsyncIterator[InternalClient]:
    client = InternalClient(upstream.url, token="t")
    try:
        yield client
    finally:
        await client.aclose()


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
WELL_SHAPED = contract.new_api_key()[0]


@pytest.mark.parametrize(
    "key",
    [
        JWT,
        "garbage",
        "tnt_aaaaaaaa_unknown",  # the right start, a secret too short
        WELL_SHAPED + "x",  # one character too many
        WELL_SHAPED[:-1],  # truncated
        WELL_SHAPED.replace("tnt_", "TNT_"),
        "tnt_AAAAAAAA_" + WELL_SHAPED[-43:],  # upper-case prefix
        WELL_SHAPED + "\n",
        "x" * 10_000,
    ],
)
async def test_a_key_of_the_wrong_shape_is_a_401_without_a_call_upstream(
    upstream: Upstream, internal: InternalClient, key: str
) -> None:
    validator = auth.IntrospectionValidator(internal)
    with pytest.raises(auth.KeyRejected) as refused:
        await validator.lookup(key)
    assert refused.value.status == 401
    assert "malformed API key" in refused.value.reason
    assert key not in refused.value.reason  # the key itself is never echoed
    assert upstream.calls == []


def test_fresh_keys_have_the_shape_the_ingestion_service_accepts() -> None:
    keys = {contract.new_api_key()[0] for _ in range(200)}
    assert len(keys) == 200
    assert all(contract.is_api_key(k) for k in keys)


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_key_the_control_plane_refuses_is_unknown_and_cached(
    upstream: Upstream, internal: InternalClient, status: int
) -> None:
    upstream.status = status
    validator = auth.IntrospectionValidator(internal, negative_ttl=60)
    for _ in range(3):
        info = await validator.lookup(WELL_SHAPED)
        with pytest.raises(auth.KeyRejected) as refused:
            auth.authorize(info, tenant="acme", now=dt.datetime.now(dt.UTC))
        assert refused.value.status == 401
    assert upstream.calls == [WELL_SHAPED]  # asked once; the refusal is cached


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_control_plane_failure_is_still_unavailable_and_not_cached(
    upstream: Upstream, internal: InternalClient, status: int
) -> None:
    upstream.status = status
    validator = auth.IntrospectionValidator(internal)
    for _ in range(2):
        with pytest.raises(auth.KeyServiceUnavailable):
            await validator.lookup(WELL_SHAPED)
    assert upstream.calls == [WELL_SHAPED, WELL_SHAPED]
