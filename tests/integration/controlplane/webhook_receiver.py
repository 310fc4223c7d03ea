"""A real HTTP receiver of webhooks on loopback (aiohttp, on a free port), for the
webhook tests: it records every request and answers as each path is told to
(status codes in turn, or a delay longer than the sender's timeout)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tenantry_dev.services import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Per path, the status codes to answer in turn (then 200)."""
    delays: dict[str, float] = field(default_factory=dict)
    """Per path, seconds to wait before answering."""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body))
        delay = self.delays.get(request.path)
        if delay:
            await asyncio.sleep(delay)
        queued = self.answers[request.path]
        status = queued.pop(0) if queued else 200
        # A long answer: the control plane keeps a short excerpt only.
        return web.Response(status=status, text=f"answer {status} " + "x" * 5000)


@asynccontextmanager
async def receiver(port: int | None = None) -> AsyncIterator[Receiver]:
    rec = Receiver(port or free_port())
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec._handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", rec.port)
    await site.start()
    try:
        yield rec
    finally:
        await runner.cleanup()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the specification: the key is the
    base64 part of ``whsec_...``; the signed content ``{id}.{timestamp}.{body}``; the
    header a space-separated list of ``v1,<base64 HMAC-SHA256>``."""
    key = base64.b64decode(secret.split("_", 1)[1])
    lower = {k.lower(): v for k, v in headers.items()}
    signed = f"{lower['webhook-id']}.{lower['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in lower["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, g) for g in given)
