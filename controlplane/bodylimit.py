"""Request-body limits, enforced before the app reads the body.

A pure ASGI middleware, so nothing downstream (FastAPI's body parsing, a dependency
calling ``request.body()``) ever holds more than the limit:

- a declared ``Content-Length`` over the limit is refused with 413 at once: the app
  is not called and not one byte of the body is read;
- a streamed body (``Transfer-Encoding: chunked``, or a client that sends more than it
  declared) is counted as it arrives, chunk by chunk, and refused with 413 as soon as
  the running total passes the limit; what came before is not kept here, and the app
  sees the refusal as a failed read (its own answer to that is dropped).

The refusal is the API's one error shape (``http_errors.body``, code ``content_too_large``).
The connection stays open: uvicorn drops the body bytes of a request it has answered
as they arrive (both its protocol implementations), so the rest of the body is never
stored, and a client that sends its whole body before reading (most do) still reads
the 413 instead of a connection reset.

The limit is ``Settings.max_body_bytes`` for every route except those whose valid
bodies can be larger: they say so with ``openapi_extra=LARGE_BODY`` (it shows in the
OpenAPI document as ``x-body-limit: large``) and take ``Settings.max_large_body_bytes``.
FastAPI's own ``max_body_size`` is not used: it checks the declared length only once
the app reads the body and answers in plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane import http_errors

LARGE_BODY: Final = {"x-body-limit": "large"}
"""``openapi_extra`` of a route that takes bodies up to ``max_large_body_bytes``."""


class BodyTooLarge(Exception):
    """Raised into the app by ``receive`` once the body passed the limit."""


def large_body_routes(routes: Iterable[BaseRoute]) -> list[tuple[str, frozenset[str]]]:
    """(path template, methods) of every route marked ``LARGE_BODY``."""
    found = []
    for ctx in iter_route_contexts(list(routes)):
        extra = getattr(ctx.original_route, "openapi_extra", None) or {}
        if extra.get("x-body-limit") == LARGE_BODY["x-body-limit"] and ctx.path:
            found.append((str(ctx.path), frozenset(ctx.methods or ())))
    return found


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None: absent or unreadable) and whether the body is
    streamed (Transfer-Encoding)."""
    declared: int | None = None
    streamed = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None  # the server refuses these; count whatever arrives
                streamed = True
        elif name == b"transfer-encoding":
            streamed = True
    return declared, streamed


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, default: int, large: int, routes: Iterable[BaseRoute]
    ) -> None:
        self.app = app
        self.default = default
        self.large = large
        self._large_routes: list[tuple[re.Pattern[str], frozenset[str]]] = [
            (compile_path(path)[0], methods) for path, methods in large_body_routes(routes)
        ]

    def limit(self, method: str, path: str) -> int:
        """The body limit of a request to ``path`` with ``method``."""
        for regex, methods in self._large_routes:
            if method in methods and regex.match(path):
                return self.large
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, streamed = _body_headers(scope)
        if not declared and not streamed:  # no body at all
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["method"], _route_path(scope))
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return

        received = 0
        refused = False
        started = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not refused:
                        refused = True
                        await _refuse(scope, send, limit)
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:  # the app's answer to a body it could not read: 413 went out
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not refused:  # a response had started: nothing left to say
                raise


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    state = scope.setdefault("state", {})
    state["error_code"] = "content_too_large"
    content = http_errors.body(
        "content_too_large",
        f"the request body is larger than {limit} bytes, the limit of this route",
        Request(scope),
    )
    response = JSONResponse(content, status_code=413)
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
