"""``tenantry.internal_client`` against a real HTTP server on loopback (aiohttp), which
counts the requests and connections it gets and answers what each test sets: one
keep-alive connection per process, retries of what a later attempt can fix (5xx,
connection errors) and nothing else, and answers outside the contract refused."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tenantry import internal_api
from tenantry.internal_api import Metric, UsageBatch, UsageEvent
from tenantry.internal_client import InternalClient, Refused, Retry, Unavailable
from tests.support.loopback import serving

FAST = Retry(attempts=3, first_delay=0.01, max_delay=0.02)
RESULT = {"received": 1, "accepted": 1, "duplicates": 0, "rejected": []}


@dataclass
class Upstream:
    url: str = ""
    answers: list[tuple[int, object]] = field(default_factory=list)  # consumed in order
    bodies: list[object] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()

    async def answer(request: web.Request) -> web.Response:
        state.peers.add(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        state.tokens.add(request.headers.get("Authorization", ""))
        state.bodies.append(await request.json() if request.can_read_body else None)
        status, body = state.answers.pop(0) if state.answers else (200, RESULT)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post(internal_api.usage_path("{org}"), answer)
    app.router.add_get(internal_api.limits_path("{org}"), answer)
    app.router.add_post(internal_api.INTROSPECT_PATH, answer)
    async with serving(app) as url:
        state.url = url
        yield state


def _batch() -> UsageBatch:
    event = UsageEvent(
        metric=Metric.EVENTS_INGESTED,
        tenant="acme",
        quantity=3,
        timestamp=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        idempotency_key="k1",
    )
    return UsageBatch(events=[event])


async def test_calls_share_one_connection_and_carry_the_token(upstream: Upstream) -> None:
    async with InternalClient(upstream.url, token="secret") as client:
        for _ in range(5):
            result = await client.report_usage("o1", _batch())
            assert result.accepted == 1
    assert len(upstream.peers) == 1  # one keep-alive connection, not one per call
    assert upstream.tokens == {"Bearer secret"}
    # What went over the wire is the shared model, read back as the server reads it.
    assert UsageBatch.model_validate(upstream.bodies[0]) == _batch()


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_retried_then_answered(upstream: Upstream, status: int) -> None:
    upstream.answers = [(status, {}), (status, {})]
    async with InternalClient(upstream.url, token="t") as client:
        result = await client.report_usage("o1", _batch(), retry=FAST)
    assert result.accepted == 1
    assert len(upstream.bodies) == 3


async def test_server_errors_past_the_attempts_are_unavailable(upstream: Upstream) -> None:
    upstream.answers = [(503, {})] * 5
    async with InternalClient(upstream.url, token="t") as client:
        with pytest.raises(Unavailable) as failed:
            await client.report_usage("o1", _batch(), retry=FAST)
    assert not isinstance(failed.value, Refused)
    assert len(upstream.bodies) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
async def test_a_refusal_is_not_retried(upstream: Upstream, status: int) -> None:
    upstream.answers = [(status, {"error": "no"})]
    async with InternalClient(upstream.url, token="t") as client:
        with pytest.raises(Refused) as refused:
            await client.report_usage("o1", _batch(), retry=FAST)
    assert refused.value.status == status
    assert len(upstream.bodies) == 1


async def test_a_closed_port_is_retried_then_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with InternalClient(f"http://127.0.0.1:{port}", token="t") as client:
        with pytest.raises(Unavailable, match="ConnectError"):
            await client.org_limits("o1", retry=FAST)


async def test_an_answer_outside_the_contract_is_unavailable(upstream: Upstream) -> None:
    upstream.answers = [(200, {"plan": "starter"}), (200, ["not", "an", "answer"])]
    async with InternalClient(upstream.url, token="t") as client:
        with pytest.raises(Unavailable, match="OrgLimitsOut"):
            await client.org_limits("o1")
        with pytest.raises(Unavailable, match="Introspection"):
            await client.introspect("tnt_x")


async def test_unknown_organisations_and_refused_keys_are_none(upstream: Upstream) -> None:
    upstream.answers = [(404, {}), (404, {}), (422, {}), (400, {})]
    async with InternalClient(upstream.url, token="t") as client:
        assert await client.org_limits("o1") is None
        for _ in range(3):
            assert await client.introspect("tnt_x") is None
    assert upstream.bodies[1] == {"key": "tnt_x"}
