"""ingestion.body: Content-Encoding decoding, bounded, with a clear 4xx for every failure."""

from __future__ import annotations

import gzip
import zlib

import pytest

from ingestion import body

DATA = b'{"event": "a", "user_id": "u"}\n' * 100


@pytest.mark.parametrize(
    ("header", "name"),
    [
        (None, "identity"),
        ("", "identity"),
        (" Identity ", "identity"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("deflate", "deflate"),
    ],
)
def test_supported_encodings_are_named(header: str | None, name: str) -> None:
    assert body.encoding_of(header) == name


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, br", "gzip,gzip", "*"])
def test_other_encodings_are_415(header: str) -> None:
    with pytest.raises(body.BodyError) as refused:
        body.encoding_of(header)
    assert (refused.value.status, refused.value.code) == (415, "unsupported_encoding")


def test_gzip_zlib_and_raw_deflate_round_trip() -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = raw.compress(DATA) + raw.flush()
    assert body.decode(gzip.compress(DATA), "gzip", limit=len(DATA)) == DATA
    assert body.decode(zlib.compress(DATA), "deflate", limit=len(DATA)) == DATA
    assert body.decode(raw_deflate, "deflate", limit=len(DATA)) == DATA
    assert body.decode(DATA, "identity", limit=1) == DATA  # the raw size is aiohttp's


def test_concatenated_gzip_members_are_one_body() -> None:
    both = gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:])
    assert body.decode(both, "gzip", limit=len(DATA)) == DATA


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_bomb_is_413_without_inflating_it_whole(encoding: str) -> None:
    bomb = (gzip.compress if encoding == "gzip" else zlib.compress)(bytes(200 * 1024 * 1024))
    with pytest.raises(body.BodyError) as refused:
        body.decode(bomb, encoding, limit=1024 * 1024)
    assert refused.value.status == 413


def test_the_limit_counts_every_gzip_member() -> None:
    two = gzip.compress(DATA) + gzip.compress(DATA)
    assert body.decode(two, "gzip", limit=2 * len(DATA)) == DATA * 2
    with pytest.raises(body.BodyError) as refused:
        body.decode(two, "gzip", limit=2 * len(DATA) - 1)
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("encoding", "data", "words"),
    [
        ("gzip", DATA, "not valid gzip"),
        ("gzip", b"", "cut short"),
        ("gzip", gzip.compress(DATA)[:-12], "cut short"),
        ("gzip", gzip.compress(DATA) + b"junk", "not valid gzip"),
        ("deflate", zlib.compress(DATA)[:-5], "cut short"),
        ("deflate", zlib.compress(DATA) + b"junk", "bytes follow"),
        ("deflate", b"\xff\xfe plain", "not valid deflate"),
    ],
)
def test_corrupt_truncated_or_trailing_data_is_400(encoding: str, data: bytes, words: str) -> None:
    with pytest.raises(body.BodyError) as refused:
        body.decode(data, encoding, limit=10 * len(DATA))
    assert (refused.value.status, refused.value.code) == (400, "undecodable_body")
    assert words in refused.value.message
