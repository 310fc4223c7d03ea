"""Idempotency-Key: a producer's retry of a batch is stored once (issue 18, item 12).

Against a real redis-server, through the HTTP side on a real port. "Stored" means an
entry in the tenant's stream: the writer turns each entry into exactly one insert,
deduplicated by ClickHouse on a replay (tests/integration/ingestion/test_writer*.py)."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest
from redis.asyncio import Redis

from ingestion.openapi import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from ingestion.stream import Stream
from tests.integration.ingestion.conftest import Service, make_service, ndjson_events

KEY = "3f0c1a4e-batch-0001"


async def entries(redis: Redis, stream: Stream) -> int:
    return int(await redis.xlen(stream.names.stream))


def headers(key: str = KEY, **more: str) -> dict[str, str]:
    return {IDEMPOTENCY_HEADER: key, **more}


async def test_a_batch_sent_again_under_its_key_is_stored_once(
    service: Service, redis: Redis
) -> None:
    batch = ndjson_events(30)  # event ids are random: one body, sent twice
    first = await service.post(batch, **headers())
    again = await service.post(batch, **headers())
    assert first[0] == again[0] == 202
    assert again[2] == first[2]  # the same batch id and count
    assert REPLAYED_HEADER not in first[1]
    assert again[1][REPLAYED_HEADER] == "true"
    assert await entries(redis, service.stream) == 1


async def test_pods_racing_on_one_key_store_it_once(stream: Stream, redis: Redis) -> None:
    """Two ingestion processes on one Redis (two pods), the same batch at once on each."""
    batch = ndjson_events(50)
    async for a in make_service(stream):
        async for b in make_service(Stream(redis, stream.names)):
            sends = [svc.post(batch, **headers()) for svc in (a, b) for _ in range(3)]
            answers = await asyncio.gather(*sends)
    assert {status for status, _, _ in answers} == {202}
    assert len({str(body) for _, _, body in answers}) == 1
    assert sum(REPLAYED_HEADER in h for _, h, _ in answers) == 5
    assert await entries(redis, stream) == 1


async def test_a_different_batch_under_a_used_key_is_refused(
    service: Service, redis: Redis
) -> None:
    await service.post(ndjson_events(5), **headers())
    status, _, body = await service.post(ndjson_events(6), **headers())
    assert status == 422
    assert isinstance(body, dict)
    assert body["error"]["code"] == "idempotency_key_reused"
    assert "different batch" in body["error"]["message"]
    assert await entries(redis, service.stream) == 1


async def test_keys_are_scoped_to_the_api_key(stream: Stream, redis: Redis) -> None:
    async for svc in make_service(stream, keys=("key-one", "key-two")):
        for api_key in ("key-one", "key-two"):
            status, _, _ = await svc.post(
                ndjson_events(3), **headers(Authorization=f"Bearer {api_key}")
            )
            assert status == 202
    assert await entries(redis, stream) == 2


async def test_without_a_key_every_copy_is_stored(service: Service, redis: Redis) -> None:
    """The documented semantics: no header, no deduplication across requests."""
    for _ in range(2):
        assert (await service.post(ndjson_events(4)))[0] == 202
    assert await entries(redis, service.stream) == 2


async def test_the_same_events_gzipped_are_the_same_batch(service: Service, redis: Redis) -> None:
    batch = ndjson_events(8)
    await service.post(batch, **headers())
    status, sent, _ = await service.post(
        gzip.compress(batch), **headers(**{"Content-Encoding": "gzip"})
    )
    assert (status, sent[REPLAYED_HEADER]) == (202, "true")
    assert await entries(redis, service.stream) == 1


async def test_refused_batches_do_not_use_up_the_key(stream: Stream, redis: Redis) -> None:
    """An invalid batch (422) and one refused for the backlog (429) record nothing: the
    producer's corrected or later retry under the same key is stored."""
    async for svc in make_service(stream, max_backlog=1):
        assert (await svc.post(b'{"event": 1}\n', **headers()))[0] == 422
        assert (await svc.post(ndjson_events(2), **headers("other")))[0] == 202
        assert (await svc.post(ndjson_events(2), **headers()))[0] == 429
        await redis.delete(stream.names.stream)
        status, sent, _ = await svc.post(ndjson_events(2), **headers())
        assert status == 202
        assert REPLAYED_HEADER not in sent
    assert await entries(redis, stream) == 1


async def test_the_key_is_remembered_for_the_window(stream: Stream, redis: Redis) -> None:
    async for svc in make_service(stream, idempotency_seconds=120):
        await svc.post(ndjson_events(2), **headers())
    (key,) = [k async for k in redis.scan_iter(match=f"{stream.names.idempotency}:*")]
    assert 110 <= await redis.ttl(key) <= 120
    assert KEY.encode() not in key  # hashed: no producer text in key names


@pytest.mark.parametrize("bad", ["", " ", "a" * 256, "clé", "with space", "tab\there"])
async def test_malformed_keys_are_a_400_before_anything_is_stored(
    service: Service, redis: Redis, bad: str
) -> None:
    sent: Any = {IDEMPOTENCY_HEADER: bad}
    status, _, body = await service.post(ndjson_events(2), **sent)
    assert status == 400
    assert isinstance(body, dict)
    assert body["error"]["code"] == "invalid_idempotency_key"
    assert await entries(redis, service.stream) == 0
