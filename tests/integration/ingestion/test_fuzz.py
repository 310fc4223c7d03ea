"""Property-based fuzzing of the ingestion API from its own OpenAPI document
(schemathesis + hypothesis) against the real process, `python -m ingestion` with its
writer, a real Redis and the ClickHouse engine: whatever the input, never a 5xx; every
error in the one JSON shape (`tenantry.errors.ERROR_SCHEMA`); every 202 the documented
body. Half of the cases carry a valid API key, so the fuzzing reaches validation and the
buffer, not only authentication; some also get a hostile body of bytes or encodings."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestion.openapi import Accepted
from tenantry.errors import ERROR_SCHEMA
from tenantry_dev.loopback_server import LoopbackServer
from tenantry_dev.services import free_port
from tests.integration.ingestion.conftest import (
    API_KEY,
    RedisProcess,
    writer_process,
)
from tests.support.fuzzing import cases
from tests.support.fuzzing import operations as fuzz_operations
from tests.support.wait import eventually, scaled, stop_process

CASES = cases(60)
ACCEPTED_SCHEMA = {
    "type": "object",
    "required": ["accepted", "batch_id"],
    "properties": {"accepted": {"type": "integer", "minimum": 1}, "batch_id": {"type": "string"}},
}


@pytest.fixture
def url(
    redis_process: RedisProcess, loopback: LoopbackServer, database: str, tmp_path: Path
) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "ingest.log"
    proc = writer_process(
        loopback=loopback,
        redis_process=redis_process,
        database=database,
        consumer="fuzz",
        log=log,
        args=(),
        listen_port=port,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(ready, timeout=scaled(60), what="ingestion ready")
        yield base
    finally:
        stop_process(proc, what="ingestion")


def _check(response: Any, failures: list[str], what: str) -> None:
    status = response.status_code
    if status >= 500:
        failures.append(f"{what}: {status} {response.text[:300]}")
        return
    if status >= 400:
        try:
            jsonschema.validate(response.json(), ERROR_SCHEMA)
        except (ValueError, jsonschema.ValidationError) as err:
            failures.append(f"{what}: {status} not in the error shape: {err}")
    elif status == 202:
        jsonschema.validate(response.json(), ACCEPTED_SCHEMA)
        assert set(response.json()) == set(Accepted.__struct_fields__)


def test_no_operation_answers_5xx(url: str) -> None:
    raw = httpx.get(f"{url}/openapi.json").json()
    operations = fuzz_operations(raw)
    assert {(o.method.upper(), o.path) for o in operations} == {
        ("POST", "/v1/events"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    }
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:

        @CASES
        @given(case=operation.as_strategy(), keyed=st.booleans())
        def check(case: Any, keyed: bool) -> None:
            headers = {"Authorization": f"Bearer {API_KEY}"} if keyed else {}
            response = case.call(base_url=url, headers=headers, timeout=scaled(30))
            statuses[response.status_code] += 1
            _check(response, failures, f"{case.method} {case.path}")

        check()
    assert not failures, "\n".join(failures[:20])
    assert statuses[202] > 0, statuses  # valid batches were generated and stored
    assert any(400 <= s < 500 for s in statuses), statuses


BODIES = st.one_of(
    st.binary(max_size=2000),
    st.binary(max_size=200).map(lambda b: gzip.compress(b)[: max(1, len(b))]),  # cut short
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=30,
    ).map(lambda v: httpx.Request("POST", "/", json=v).content),
)


@CASES
@given(
    body=BODIES,
    content_type=st.sampled_from(
        ["application/json", "application/x-ndjson", "text/plain", "application/json; x=y", ""]
    ),
    encoding=st.sampled_from([None, "gzip", "deflate", "br", "gzip, gzip", "identity"]),
)
def test_hostile_bodies_get_a_4xx_in_the_error_shape(
    url: str, body: bytes, content_type: str, encoding: str | None
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    response = httpx.post(f"{url}/v1/events", content=body, headers=headers, timeout=scaled(30))
    failures: list[str] = []
    _check(response, failures, f"{content_type} {encoding}")
    assert not failures, failures
