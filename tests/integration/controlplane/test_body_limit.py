"""Request-body limits (issue 18 item 7), through the real server process
(``tenantry controlplane serve``: uvicorn and the whole middleware stack), with bodies
written on raw sockets so the test controls exactly what is sent and when.

- a 150 MiB declared body is refused with 413 before it is sent; the rest of it goes
  through without the server's memory growing (it read, parsed and kept ~400 MB), and
  the connection then serves the next request;
- a chunked body is refused as soon as it passes the limit, not after it ends;
- bodies up to the limit are accepted in both forms, one byte more is refused;
- the routes that need more (usage batches) take more, and only they.
"""

from __future__ import annotations

import datetime as dt
import json
import select
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tenantry import internal_api
from tests.integration.controlplane.conftest import PASSWORD
from tests.integration.controlplane.processes import INTERNAL_TOKEN, Served, control_plane_process
from tests.support.wait import scaled

MiB = 1024 * 1024
LIMIT = MiB  # the default of Settings.max_body_bytes
LARGE = 4 * MiB  # the default of Settings.max_large_body_bytes
FAST_HASHING = {
    "TENANTRY_CP_ARGON2_TIME_COST": "1",
    "TENANTRY_CP_ARGON2_MEMORY_KIB": "8192",
    "TENANTRY_CP_RATE_LIMIT_PER_IP": "100000",
    "TENANTRY_CP_RATE_LIMIT_PER_IDENTITY": "100000",
}


@pytest.fixture
async def served(database: str, redis_db: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with control_plane_process(
        database=database,
        redis=redis_db,
        kubeconfig=None,
        extra_env=FAST_HASHING,
        log=tmp_path / "controlplane.log",
    ) as server:
        yield server


def _rss(pid: int) -> int:
    """Resident memory of the process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, str]:
        data = json.loads(self.body)
        assert set(data) == {"error"}, data
        assert set(data["error"]) == {"code", "message", "requestId"}, data
        return dict(data["error"])


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection(
        (parts.hostname or "127.0.0.1", parts.port or 80), timeout=scaled(30)
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: cp.test", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answered(sock: socket.socket, wait: float) -> bool:
    readable, _, _ = select.select([sock], [], [], wait)
    return bool(readable)


def _read_answer(sock: socket.socket, timeout: float) -> Answer | None:
    """The response, or None when none (complete) came within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
        left = deadline - time.monotonic()
        if left <= 0 or not _answered(sock, left):
            return None
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            piece = b""
        if not piece:
            break
        data += piece
    if b"\r\n\r\n" not in data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def _expected_length(data: bytes) -> int:
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return len(data) + 1
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(head) + 4 + int(value.strip())
    return len(data)


def _send_until_refused(sock: socket.socket, total: int, piece: bytes) -> int:
    """Go on sending ``total`` bytes, as a client that ignores the answer would; the
    bytes the kernel took before the connection broke."""
    sent = 0
    sock.settimeout(10)
    try:
        while sent < total:
            sent += sock.send(piece[: total - sent])
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def _credentials(email: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD}


def _signup(email: str) -> bytes:
    return json.dumps(_credentials(email)).encode()


def _padded(body: bytes, size: int) -> bytes:
    """``body`` with JSON whitespace up to ``size`` bytes: still the same valid JSON."""
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + body[-1:]


def _chunked(body: bytes, piece: int = 65536) -> list[bytes]:
    frames = [b"%x\r\n%s\r\n" % (len(c), c) for c in _pieces(body, piece)]
    return [*frames, b"0\r\n\r\n"]


def _pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def _post_raw(url: str, path: str, head: dict[str, str], frames: list[bytes]) -> Answer | None:
    with _connect(url) as sock:
        sock.sendall(_head(path, head))
        try:
            for frame in frames:
                sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed before the body was through: the answer is read
        return _read_answer(sock, timeout=scaled(30))


async def test_a_150_mib_declared_body_is_refused_before_it_is_read(served: Served) -> None:
    size = 150 * MiB
    opening = b'{"email": "big@example.com", "password": "'
    # Warm up the refusal itself (imports, first allocations), then measure.
    with _connect(served.url) as sock:
        sock.sendall(_head("/v1/auth/signup", {"Content-Length": str(LIMIT + 1)}))
        warm = _read_answer(sock, timeout=scaled(30))
        assert warm is not None
        assert warm.status == 413
    before = _rss(served.pid)

    with _connect(served.url) as sock:
        started = time.monotonic()
        sock.sendall(_head("/v1/auth/signup", {"Content-Length": str(size)}) + opening)
        sock.sendall(b"a" * MiB)  # the server has more than enough to start reading
        answer = _read_answer(sock, timeout=scaled(15))
        waited = time.monotonic() - started
        assert answer is not None, "no answer before the body was complete"
        assert answer.status == 413, answer
        error = answer.error()
        assert error["code"] == "content_too_large"
        assert str(LIMIT) in error["message"]
        assert error["requestId"] == answer.headers["x-request-id"]
        assert waited < 10, waited
        # A client that sends its whole body anyway: the server drops it as it comes,
        # and the connection serves the next request.
        sock.settimeout(60)
        rest = size - len(opening) - MiB
        piece = b"a" * MiB
        while rest > 0:
            sock.sendall(piece[:rest])
            rest -= min(rest, MiB)
        during = _rss(served.pid)
        body = _signup("next@example.com")
        sock.sendall(_head("/v1/auth/signup", {"Content-Length": str(len(body))}) + body)
        answer = _read_answer(sock, timeout=scaled(30))
        assert answer is not None
        assert answer.status == 201, answer

    after = _rss(served.pid)
    assert max(during, after) - before < 16 * MiB, (before, during, after)


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(served: Served) -> None:
    before = _rss(served.pid)
    piece = 64 * 1024
    cap = 64 * MiB  # what the old code would have read in full (and then answered 422)
    sent = 0
    with _connect(served.url) as sock:
        sock.sendall(_head("/v1/auth/signup", {"Transfer-Encoding": "chunked"}))
        opening = b'{"email": "stream@example.com", "password": "'
        sock.sendall(b"%x\r\n%s\r\n" % (len(opening), opening))
        sent = len(opening)
        frame = b"%x\r\n%s\r\n" % (piece, b"a" * piece)
        try:
            while sent < cap and not _answered(sock, 0.01):
                sock.sendall(frame)
                sent += piece
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while this piece was on its way
        else:
            if sent >= cap:
                sock.sendall(b'2\r\n"}\r\n0\r\n\r\n')  # the old code answers at the end
        answer = _read_answer(sock, timeout=scaled(30))
    assert answer is not None
    assert answer.status == 413, answer
    assert answer.error()["code"] == "content_too_large"
    # Not before the body passed the limit, and long before the client was done (the
    # margin is what a busy server may still have in flight when it answers).
    assert LIMIT < sent < cap // 2, sent
    assert _rss(served.pid) - before < 16 * MiB


async def test_bodies_up_to_the_limit_are_accepted_and_one_byte_more_is_not(
    served: Served,
) -> None:
    for i, form in enumerate(("length", "chunked")):
        exact = _padded(_signup(f"exact-{i}@example.com"), LIMIT)
        over = _padded(_signup(f"over-{i}@example.com"), LIMIT + 1)
        for body, status in ((exact, 201), (over, 413)):
            if form == "length":
                answer = _post_raw(
                    served.url, "/v1/auth/signup", {"Content-Length": str(len(body))}, [body]
                )
            else:
                answer = _post_raw(
                    served.url, "/v1/auth/signup", {"Transfer-Encoding": "chunked"}, _chunked(body)
                )
            assert answer is not None, (form, len(body))
            assert answer.status == status, (form, len(body), answer.body[:300])


async def test_only_the_routes_that_need_it_take_a_larger_body(served: Served) -> None:
    """Usage batches (5 000 events) can be larger than the default limit: their route
    takes up to max_large_body_bytes; every other route still refuses such a body."""
    async with httpx.AsyncClient(base_url=served.url, timeout=scaled(60)) as http:
        r = await http.post("/v1/auth/signup", json=_credentials("owner@example.com"))
        assert r.status_code == 201, r.text
        r = await http.post("/v1/auth/login", json=_credentials("owner@example.com"))
        token = r.json()["access_token"]
        r = await http.post(
            "/v1/orgs",
            json={"slug": f"o{uuid.uuid4().hex[:8]}", "name": "O"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        org = r.json()["id"]

        now = dt.datetime.now(dt.UTC).isoformat()
        events = [
            {
                "metric": "events_ingested",
                "tenant": "shop",
                "quantity": 1,
                "timestamp": now,
                "idempotency_key": f"batch-{i:05d}-" + "k" * 180,
            }
            for i in range(5000)
        ]
        batch = json.dumps({"events": events}).encode()
        assert LIMIT < len(batch) < LARGE, len(batch)
        internal = {"Authorization": f"Bearer {INTERNAL_TOKEN}", "Content-Type": "application/json"}
        r = await http.post(
            served.internal_url + internal_api.usage_path(org), content=batch, headers=internal
        )
        assert r.status_code == 200, r.text[:300]
        assert r.json()["received"] == 5000

        # The same bytes on a route of the default limit.
        user = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        r = await http.post("/v1/orgs", content=batch, headers=user)
        assert r.status_code == 413, r.text[:300]

    # And the larger limit holds too.
    beyond = _padded(batch, LARGE + 1)
    answer = _post_raw(
        served.internal_url,
        internal_api.usage_path(org),
        {"Content-Length": str(len(beyond)), "Authorization": f"Bearer {INTERNAL_TOKEN}"},
        [beyond],
    )
    assert answer is not None
    assert answer.status == 413, answer
    assert str(LARGE) in answer.error()["message"]
