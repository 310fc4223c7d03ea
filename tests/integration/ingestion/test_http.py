"""POST /v1/events against a real redis-server: validation, gzip, auth, 202 after XADD,
503 when Redis is gone, 429 with Retry-After over the backlog bound, health and metrics."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from ingestion import events
from ingestion.stream import Names, Stream
from tests.integration.ingestion.conftest import (
    RedisProcess,
    Service,
    make_service,
    metric_value,
    ndjson_events,
)
from tests.support.wait import until


async def stream_entries(redis: Redis, stream: Stream) -> list[dict[bytes, bytes]]:
    reply: Any = await redis.xrange(stream.names.stream)
    return [fields for _id, fields in reply]


async def test_accepted_batch_is_in_the_stream_when_202_arrives(
    service: Service, redis: Redis
) -> None:
    status, _headers, body = await service.post(ndjson_events(25))
    assert status == 202
    assert isinstance(body, dict)
    assert body["accepted"] == 25
    (entry,) = await stream_entries(redis, service.stream)
    assert entry[b"batch"].decode() == body["batch_id"]
    assert entry[b"n"] == b"25"
    assert entry[b"bytes"] == str(len(ndjson_events(25))).encode()
    rows = events.read_rows(entry[b"rowbinary"])
    assert len(rows) == 25
    assert {r["batch_id"] for r in rows} == {body["batch_id"]}
    assert json.loads(rows[3]["properties"]) == {"n": 3, "tag": "e"}


async def test_json_array_and_gzip_ndjson(service: Service, redis: Redis) -> None:
    array = json.dumps([{"event": "a", "user_id": "u1"}, {"event": "b", "user_id": "u2"}])
    status, _, body = await service.post(array.encode(), content_type="application/json")
    assert (status, body) == (202, {"accepted": 2, "batch_id": body["batch_id"]})  # type: ignore[index]
    compressed = gzip.compress(ndjson_events(40))
    status, _, body = await service.post(compressed, **{"Content-Encoding": "gzip"})
    assert status == 202
    assert isinstance(body, dict)
    assert body["accepted"] == 40
    assert [e[b"n"] for e in await stream_entries(redis, service.stream)] == [b"2", b"40"]


async def test_invalid_events_are_listed_and_nothing_is_written(
    service: Service, redis: Redis
) -> None:
    lines = [
        b'{"event": "ok", "user_id": "u"}',
        b'{"event": "ok", "user_id": 5}',
        b'{"event": "ok", "user_id": "u", "extra": 1}',
        b'{"event": "ok", "user_id": "u", "timestamp": "yesterday"}',
    ]
    status, headers, body = await service.post(b"\n".join(lines))
    assert status == 422
    assert isinstance(body, dict)
    error = body["error"]
    assert error["code"] == "invalid_batch"
    assert error["requestId"] == headers["X-Request-ID"]
    found = [(e["line"], e["field"]) for e in error["errors"]]
    assert found == [(2, "user_id"), (3, "extra"), (4, "timestamp")]
    assert "RFC 3339" in error["errors"][2]["allowed"]
    assert await redis.xlen(service.stream.names.stream) == 0
    text = await service.scrape()
    assert metric_value(text, "tenantry_ingest_events_rejected_total") == 3


async def test_content_type_size_and_auth_are_checked(service: Service, redis: Redis) -> None:
    status, _, body = await service.post(b"event=x", content_type="text/plain")
    assert status == 415
    assert isinstance(body, dict)
    assert "application/x-ndjson" in body["error"]["message"]
    bomb = gzip.compress(b"\n" * (2 * 1024 * 1024))  # 2 MiB decompressed, limit 1 MiB
    status, _, _ = await service.post(bomb, **{"Content-Encoding": "gzip"})
    assert status == 413
    async with service.session.post(
        f"{service.url}/v1/events",
        data=ndjson_events(1),
        headers={"Content-Type": "application/x-ndjson"},
    ) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    status, _, _ = await service.post(ndjson_events(1), Authorization="Bearer wrong-key")
    assert status == 401
    async with service.session.post(
        f"{service.url}/v1/events",
        data=ndjson_events(3),
        headers={"Content-Type": "application/x-ndjson", "X-API-Key": "test-api-key-1"},
    ) as resp:
        assert resp.status == 202
    assert await redis.xlen(service.stream.names.stream) == 1


async def test_redis_down_gives_503_and_what_was_acked_survives_a_restart(
    service: Service, redis: Redis, redis_process: RedisProcess
) -> None:
    status, _, first = await service.post(ndjson_events(10))
    assert status == 202
    assert (await service.get("/readyz"))[0] == 200
    redis_process.kill()
    status, headers, _ = await service.post(ndjson_events(10))
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert (await service.get("/readyz"))[0] == 503
    assert (await service.get("/healthz"))[0] == 200
    redis_process.start()
    entries = await stream_entries(redis, service.stream)
    assert [e[b"batch"].decode() for e in entries] == [first["batch_id"]]  # type: ignore[index]
    status, _, _ = await service.post(ndjson_events(10))
    assert status == 202
    text = await service.scrape()
    assert 'tenantry_ingest_batches_total{outcome="unavailable"} 1.0' in text


@pytest.fixture
async def small_service(stream: Stream) -> AsyncIterator[Service]:
    async for made in make_service(stream, max_backlog=3):
        yield made


async def test_backlog_over_its_bound_gives_429_with_retry_after(
    small_service: Service, redis: Redis
) -> None:
    for _ in range(3):
        assert (await small_service.post(ndjson_events(5)))[0] == 202
    status, headers, body = await small_service.post(ndjson_events(5))
    assert status == 429
    assert headers["Retry-After"] == "2"
    assert isinstance(body, dict)
    assert body["error"]["code"] == "backlog_full"
    assert await redis.xlen(small_service.stream.names.stream) == 3
    # once the writer has drained entries (acked and deleted), batches are accepted again
    oldest: Any = await redis.xrange(small_service.stream.names.stream, count=1)
    first_id = oldest[0][0]
    await redis.xdel(small_service.stream.names.stream, first_id)
    assert (await small_service.post(ndjson_events(5)))[0] == 202
    text = await small_service.scrape()
    assert metric_value(text, "tenantry_ingest_throttled_total") == 1
    assert metric_value(text, "tenantry_ingest_events_accepted_total") == 20
    assert metric_value(text, "tenantry_ingest_backlog_entries") == 3
    assert "tenantry_ingest_request_seconds_bucket" in text


@pytest.fixture
async def bounded_service(stream: Stream) -> AsyncIterator[Service]:
    async for made in make_service(stream, max_backlog=10):
        yield made


async def test_the_bound_holds_when_plain_appends_give_way_to_checked_ones(
    bounded_service: Service, redis: Redis
) -> None:
    """Far under the bound appends skip the check (plain XADD); from half of it on they
    are checked atomically again, so the bound is exact, concurrent batches included."""
    results = [await bounded_service.post(ndjson_events(3)) for _ in range(4)]
    assert [status for status, _, _ in results] == [202] * 4
    more = await asyncio.gather(*(bounded_service.post(ndjson_events(3)) for _ in range(12)))
    assert sorted(status for status, _, _ in more) == [202] * 6 + [429] * 6
    entries = await stream_entries(redis, bounded_service.stream)
    assert len(entries) == 10
    assert all(e[b"n"] == b"3" and len(events.read_rows(e[b"rowbinary"])) == 3 for e in entries)
    text = await bounded_service.scrape()
    assert metric_value(text, "tenantry_ingest_backlog_entries") == 10


async def test_batches_take_turns_in_arrival_order(service: Service, redis: Redis) -> None:
    """Validation and append are done one request at a time, first come first served:
    a batch that arrives while an earlier one waits for Redis waits its turn."""
    await redis.client_pause(1500, all=False)  # writes (the appends) stall for 1.5 s
    first = asyncio.create_task(service.post(ndjson_events(5)))
    await until(service.ingest._turn.locked, what="the first batch in its turn")
    second = asyncio.create_task(service.post(ndjson_events(7)))
    (s1, _, b1), (s2, _, b2) = await asyncio.gather(first, second)
    assert (s1, s2) == (202, 202)
    assert isinstance(b1, dict)
    assert isinstance(b2, dict)
    entries = await stream_entries(redis, service.stream)
    assert [e[b"batch"].decode() for e in entries] == [b1["batch_id"], b2["batch_id"]]
    text = await service.scrape()
    waited = metric_value(text, "tenantry_ingest_turn_wait_seconds_sum")
    assert waited >= 0.25, "the second batch waited for the first one's append"
    assert metric_value(text, "tenantry_ingest_turn_wait_seconds_count") == 2


async def test_a_stalled_redis_turns_the_queue_away_with_503(
    service: Service, redis: Redis
) -> None:
    """While an append hangs, later batches do not queue for ever: after the turn
    timeout they get 503 + Retry-After, and nothing of theirs is written."""
    service.ingest.turn_timeout = 0.2
    await redis.client_pause(4000, all=False)
    first = asyncio.create_task(service.post(ndjson_events(5)))
    await until(service.ingest._turn.locked, what="the first batch in its turn")
    started = asyncio.get_running_loop().time()
    status, headers, body = await service.post(ndjson_events(7))
    assert asyncio.get_running_loop().time() - started < 2.0  # not the 4 s of the stall
    assert status == 503
    assert headers["Retry-After"] == "2"
    assert isinstance(body, dict)
    assert body["error"]["code"] == "unavailable"
    assert (await first)[0] == 202
    assert [e[b"n"] for e in await stream_entries(redis, service.stream)] == [b"5"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/events", 405, "method_not_allowed"),
        ("PUT", "/v1/events", 405, "method_not_allowed"),
        ("GET", "/nowhere", 404, "not_found"),
        ("POST", "/v1/events/", 404, "not_found"),
        ("DELETE", "/healthz", 405, "method_not_allowed"),
    ],
)
async def test_every_error_is_in_the_one_json_shape(
    service: Service, method: str, path: str, status: int, code: str
) -> None:
    sent = {"X-Request-ID": "probe-42"}
    async with service.session.request(method, f"{service.url}{path}", headers=sent) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert resp.headers["X-Request-ID"] == "probe-42"
    assert body == {
        "error": {"code": code, "message": body["error"]["message"], "requestId": "probe-42"}
    }
    assert body["error"]["message"]


async def test_refusals_carry_a_fresh_request_id_when_the_callers_is_unusable(
    service: Service,
) -> None:
    for sent in ({}, {"X-Request-ID": "no spaces allowed"}, {"X-Request-ID": "x" * 65}):
        async with service.session.post(f"{service.url}/v1/events", headers=sent) as resp:
            assert resp.status == 401
            body = await resp.json()
            rid = resp.headers["X-Request-ID"]
        assert body["error"]["code"] == "unauthorized"
        assert body["error"]["requestId"] == rid
        assert rid != sent.get("X-Request-ID")
        assert len(rid) == 32


async def test_readyz_answers_503_in_time_when_redis_accepts_but_never_answers(
    names: Names,
) -> None:
    """A Redis that takes the connection and says nothing (a stuck server, a half-open
    path): /readyz says so within READY_SECONDS, before the kubelet's 2 s probe timeout,
    instead of leaving the probe to time out with no reason."""
    from ingestion import server
    from ingestion.stream import connect

    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    mute = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = mute.sockets[0].getsockname()[1]
    redis = connect(host="127.0.0.1", port=port)
    try:
        async for made in make_service(Stream(redis, names)):
            started = time.monotonic()
            status, text = await made.get("/readyz")
            took = time.monotonic() - started
            assert (status, json.loads(text)["redis"]) == (503, "TimeoutError")
            assert server.READY_SECONDS <= took < 2.0, took
            assert accepted, "the service never reached the silent server"
    finally:
        await redis.aclose()
        for writer in accepted:
            writer.close()
        mute.close()
        await mute.wait_closed()
