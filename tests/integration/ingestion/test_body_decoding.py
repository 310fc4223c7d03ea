"""Every body-decoding failure is a 4xx in the JSON error shape, never a 500: a body
that does not match its Content-Encoding, an encoding the service does not speak, a
stream cut short. Nothing of such a request reaches the stream."""

from __future__ import annotations

import gzip
import zlib

import pytest
from redis.asyncio import Redis

from tests.integration.ingestion.conftest import Service, ndjson_events

EVENTS = ndjson_events(5)
GZIP = gzip.compress(EVENTS)


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("gzip", EVENTS, 400),  # plain text sent as gzip
        ("gzip", b"", 400),
        ("gzip", GZIP[: len(GZIP) // 2], 400),  # truncated gzip
        ("gzip", GZIP[:10] + bytes(len(GZIP) - 10), 400),  # corrupt deflate data
        ("deflate", EVENTS, 400),
        ("deflate", zlib.compress(EVENTS)[:-6], 400),
        ("br", EVENTS, 415),
        ("zstd", EVENTS, 415),
        ("compress", EVENTS, 415),
        ("gzip, br", GZIP, 415),
        ("x-unknown", EVENTS, 415),
    ],
)
async def test_undecodable_bodies_are_a_4xx_with_a_message(
    service: Service, redis: Redis, encoding: str, body: bytes, status: int
) -> None:
    got, _, answer = await service.post(body, **{"Content-Encoding": encoding})
    assert got == status, answer
    assert isinstance(answer, dict)
    assert answer["error"]["code"] in ("undecodable_body", "unsupported_encoding")
    assert answer["error"]["message"]
    assert await redis.exists(service.stream.names.stream) == 0


@pytest.mark.parametrize(("encoding", "data"), [("gzip", GZIP), ("deflate", zlib.compress(EVENTS))])
async def test_supported_encodings_still_work(service: Service, encoding: str, data: bytes) -> None:
    got, _, answer = await service.post(data, **{"Content-Encoding": encoding})
    assert (got, answer["accepted"]) == (202, 5)  # type: ignore[index]
