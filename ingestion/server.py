"""The HTTP side: `POST /v1/events`, health, readiness and metrics, on aiohttp.

Why aiohttp rather than FastAPI/uvicorn (which the control plane uses): this
service has one hot endpoint whose body is raw bytes handed to msgspec, so
FastAPI's request models, dependency injection and OpenAPI add per-request
cost and nothing else. aiohttp's server parses HTTP in C (llhttp) without
extra packages (uvicorn would need httptools and uvloop for the same) and
bounds request bodies itself (`client_max_size`); it is already a dependency,
and the introspection client uses it as well. Content-Encoding is decoded by
`ingestion.body`, not by aiohttp (see there why): run the app with
`RUNNER_OPTIONS`.

Order of a request: API key (401/403/503, before reading the body) ->
the key's rate limit (429 + Retry-After; a moving window in the tenant's Redis,
`tenantry.ratelimit`, so one key's flood never spends another key's budget) ->
body (400/413/415) -> validation (422, nothing written) -> one atomic
append-if-under-bound to the Redis Stream (429 + Retry-After when the backlog
is over its bound, 503 when Redis is unreachable) -> 202 with the count and
the batch id. 202 is sent only after Redis has the entry.

Validation and append take turns, in arrival order (`Api._turn`): validating a
batch is pure CPU (about 3.5 ms for 1,000 events) and blocks the event loop, so
when requests pile up (a burst, or the process waiting for a CPU) without turns
every queued request is validated before any earlier one sees its Redis reply,
and all of them finish late together. With turns the first finishes first and only
the last few of a pile wait long: at half the maximum rate the ack p99 went from
68-146 ms to under 45 ms (bench/README.md). The cost is Redis round trips no longer
overlapping a validation, a few percent of peak throughput.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web
from limits import RateLimitItem
from redis.exceptions import RedisError

from ingestion import auth, body, events
from ingestion.metrics import Metrics
from ingestion.openapi import (
    IDEMPOTENCY_HEADER,
    JSON_TYPES,
    MAX_IDEMPOTENCY_KEY,
    NDJSON_TYPES,
    REPLAYED_HEADER,
    Accepted,
    document,
)
from ingestion.stream import Idempotency, Stream
from tenantry import ratelimit
from tenantry.errors import REQUEST_ID_HEADER, error_body, request_id

logger = logging.getLogger(__name__)
READY_SECONDS = 1.5
"""How long /readyz waits for Redis's PING (the readiness probe's timeout is 2 s)."""


STREAM_KEY: web.AppKey[Stream] = web.AppKey("stream", Stream)
# How every runner of `create_app` must be made (AppRunner/TestServer keyword arguments):
# bodies are decoded by `ingestion.body`, so aiohttp must hand them over as sent.
RUNNER_OPTIONS: dict[str, Any] = {"auto_decompress": False, "access_log": None}
_encode = msgspec.json.encode


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_encode(body), content_type="application/json", headers=headers
    )


def _accepted(body: Accepted, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=202, body=_encode(body), content_type="application/json", headers=headers
    )


class Refusal(Exception):
    """A request refused on purpose: the error middleware answers it in the one error
    shape (`tenantry.errors.error_body`) with the request's id."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The one place where errors become responses: refusals, aiohttp's own HTTP errors
    (unknown path, wrong method) and anything unexpected (500, its type logged only),
    all in the one error shape; every response carries the request id."""
    rid = request_id(request.headers.get(REQUEST_ID_HEADER))
    try:
        response = await handler(request)
    except Refusal as exc:
        body = error_body(exc.code, exc.message, request_id=rid, **exc.details)
        response = _json(exc.status, body, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = _json(exc.status, error_body(code, exc.reason, request_id=rid), headers)
    except Exception as exc:
        logger.error("unhandled error in %s: %s", request.path, type(exc).__name__)
        response = _json(500, error_body("internal", "internal error", request_id=rid))
    response.headers[REQUEST_ID_HEADER] = rid
    return response


def api_key(request: web.Request) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("X-API-Key", "").strip()
    return key or None


class KeyLimit:
    """At most `limit` requests of one API key in any window (`tenantry.ratelimit`)."""

    def __init__(self, window: ratelimit.MovingWindow, *, tenant: str, limit: RateLimitItem):
        self.window = window
        self.limit = limit
        self.bucket = f"ingest:{tenant}:key"

    async def hit(self, key: str) -> ratelimit.Refused | None:
        return await self.window.hit(self.limit, self.bucket, key)


class Ingest:
    """The handlers, with what they need (no globals)."""

    def __init__(
        self,
        *,
        tenant: str,
        stream: Stream,
        validator: auth.KeyValidator,
        metrics: Metrics,
        limits: events.Limits,
        max_backlog: int,
        retry_after_seconds: int,
        max_body_bytes: int,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        turn_timeout_seconds: float = 5.0,
        key_limit: KeyLimit | None = None,
        idempotency_seconds: int = 3600,
    ) -> None:
        self.tenant = tenant
        self.stream = stream
        self.validator = validator
        self.metrics = metrics
        self.limits = limits
        self.max_backlog = max_backlog
        self._turn = asyncio.Lock()  # FIFO: validation + append, one request at a time
        # A request waits this long for its turn, then gets 503 + Retry-After: a Redis
        # that stopped answering must not make a queue of requests each wait its timeout.
        self.turn_timeout = turn_timeout_seconds
        self.retry_after = str(retry_after_seconds)
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.key_limit = key_limit
        self.idempotency_seconds = idempotency_seconds

    async def post_events(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            response = await self._post_events(request)
        finally:
            self.metrics.request_seconds.observe(time.perf_counter() - started)
        return response

    def _outcome(self, outcome: str) -> None:
        self.metrics.batches.labels(outcome).inc()

    async def _post_events(self, request: web.Request) -> web.Response:
        key = api_key(request)
        if key is None:
            self._outcome("unauthorized")
            raise Refusal(
                401,
                "unauthorized",
                "send the API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            auth.authorize(await self.validator.lookup(key), tenant=self.tenant, now=self.clock())
        except auth.KeyRejected as exc:
            self._outcome("unauthorized" if exc.status == 401 else "forbidden")
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            raise Refusal(
                exc.status,
                "unauthorized" if exc.status == 401 else "forbidden",
                exc.reason,
                headers,
            ) from None
        except auth.KeyServiceUnavailable:
            self._outcome("unavailable")
            raise Refusal(
                503,
                "unavailable",
                "API keys cannot be checked right now",
                {"Retry-After": self.retry_after},
            ) from None
        if self.key_limit is not None:
            await self._limit(key)
        try:
            idempotency = _idempotency_key(request)
        except Refusal:
            self._outcome("invalid")
            raise
        content_type = request.content_type
        if content_type in NDJSON_TYPES:
            ndjson = True
        elif content_type in JSON_TYPES:
            ndjson = False
        else:
            self._outcome("unsupported")
            allowed = ", ".join(sorted(JSON_TYPES | NDJSON_TYPES))
            raise Refusal(415, "unsupported_media_type", f"Content-Type must be one of {allowed}")
        try:
            encoding = body.encoding_of(request.headers.get("Content-Encoding"))
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise body.BodyError(
                    413, "too_large", f"the body exceeds {self.max_body_bytes} bytes"
                ) from None
            data = body.decode(raw, encoding, limit=self.max_body_bytes)
        except body.BodyError as exc:
            self._outcome("too_large" if exc.status == 413 else "unsupported")
            raise Refusal(exc.status, exc.code, exc.message) from None
        waiting = time.perf_counter()
        try:
            async with asyncio.timeout(self.turn_timeout):
                await self._turn.acquire()
        except TimeoutError:
            self._outcome("unavailable")
            raise Refusal(
                503,
                "unavailable",
                "earlier batches are still being appended; retry later",
                {"Retry-After": self.retry_after},
            ) from None
        try:
            self.metrics.turn_wait_seconds.observe(time.perf_counter() - waiting)
            scope = (key, idempotency) if idempotency is not None else None
            return await self._accept(data, ndjson=ndjson, idempotency=scope)
        finally:
            self._turn.release()

    def _redis_unreachable(self, what: str, exc: Exception) -> Refusal:
        """The 503 of a Redis that failed (the limit check or the append)."""
        logger.warning("%s failed: %s", what, type(exc).__name__)
        self._outcome("unavailable")
        return Refusal(
            503,
            "unavailable",
            "the event buffer is unreachable; retry later",
            {"Retry-After": self.retry_after},
        )

    async def _limit(self, key: str) -> None:
        """Count the request against its key's limit: 429 over it, 503 without Redis."""
        assert self.key_limit is not None
        try:
            refused = await self.key_limit.hit(key)
        except (RedisError, OSError) as exc:
            raise self._redis_unreachable("rate limit check", exc) from None
        if refused is not None:
            self._outcome("rate_limited")
            raise Refusal(
                429,
                "rate_limited",
                f"too many requests with this API key; retry in {refused.retry_after} s",
                {"Retry-After": str(refused.retry_after)},
            )

    async def _accept(
        self, data: bytes, *, ndjson: bool, idempotency: tuple[str, str] | None
    ) -> web.Response:
        """Validate and append one batch (its turn held): 422, 503, 429 or 202.

        ``idempotency``: (API key, Idempotency-Key) when the producer sent one. A batch
        sent again under the same pair within ``idempotency_seconds`` is not appended
        again: it gets the first one's answer (202, its batch id and count, header
        ``Idempotent-Replayed: true``); a different body under a key already used is a
        422, since answering it with the first batch's 202 would hide that the new
        events were never stored."""
        received = self.clock()
        batch_id = uuid.uuid4().hex
        try:
            rows, count = events.prepare(
                data, ndjson=ndjson, now=received, limits=self.limits, batch_id=batch_id
            )
        except events.InvalidBatch as exc:
            self._outcome("invalid")
            self.metrics.events_rejected.inc(exc.total)
            raise Refusal(422, "invalid_batch", exc.message, **exc.details()) from None
        # Hashed only under an Idempotency-Key: the digest tells a resent batch from a
        # different one, and the hot path without a key pays nothing for it.
        digest = ""
        remember = None
        if idempotency is not None:
            digest = hashlib.sha256(data).hexdigest()
            remember = Idempotency(
                key=self.stream.names.idempotency_key(*idempotency),
                record=f"{batch_id} {count} {digest}",
                ttl=self.idempotency_seconds,
            )
        try:
            appended = await self.stream.append(
                rows,
                count=count,
                size=len(data),
                batch_id=batch_id,
                max_backlog=self.max_backlog,
                idempotency=remember,
            )
        except (RedisError, OSError) as exc:
            raise self._redis_unreachable("append to the stream", exc) from None
        entry, backlog = appended.entry, appended.backlog
        self.metrics.backlog.set(backlog)
        if appended.replayed is not None:
            return self._replay(appended.replayed, digest)
        if entry is None:
            self._outcome("throttled")
            self.metrics.throttled.inc()
            raise Refusal(
                429,
                "backlog_full",
                f"{backlog} batches are waiting to be written; retry later",
                {"Retry-After": self.retry_after},
            )
        self._outcome("accepted")
        self.metrics.events_accepted.inc(count)
        return _accepted(Accepted(accepted=count, batch_id=batch_id))

    def _replay(self, record: str, digest: str) -> web.Response:
        """The answer to a batch whose Idempotency-Key was already used (see `_accept`)."""
        first_batch, first_count, first_digest = record.split(" ")
        if first_digest != digest:
            self._outcome("idempotency_conflict")
            raise Refusal(
                422,
                "idempotency_key_reused",
                f"this {IDEMPOTENCY_HEADER} was used for a different batch ({first_batch}) "
                f"in the last {self.idempotency_seconds} s; send new events under a new key",
            )
        self._outcome("replayed")
        accepted = Accepted(accepted=int(first_count), batch_id=first_batch)
        return _accepted(accepted, {REPLAYED_HEADER: "true"})

    async def healthz(self, _request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        """Ready when Redis answers a PING within READY_SECONDS: an answer (200 or 503
        with the reason) always comes before the kubelet's probe gives up (its timeout
        is 2 s), never a probe timeout that says nothing."""
        try:
            async with asyncio.timeout(READY_SECONDS):
                await self.stream.redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            return _json(503, {"status": "unavailable", "redis": type(exc).__name__})
        return _json(200, {"status": "ready"})

    async def metrics_page(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )


def _idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key: None when absent, 400 when not 1 to 255 visible
    ASCII characters (it is an opaque token such as a UUID)."""
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    if not 0 < len(value) <= MAX_IDEMPOTENCY_KEY or not all("!" <= c <= "~" for c in value):
        raise Refusal(
            400,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII "
            "characters, such as a UUID",
        )
    return value


def create_app(ingest: Ingest, *, accept_events: bool = True) -> web.Application:
    """The aiohttp application; lifecycle of Redis and the writer is the caller's.

    Without `accept_events` (writer-only processes) it serves health and metrics only.
    """
    app = web.Application(client_max_size=ingest.max_body_bytes, middlewares=[errors_middleware])
    app[STREAM_KEY] = ingest.stream
    if accept_events:
        app.router.add_post("/v1/events", ingest.post_events)
    described = _encode(
        document(max_events=ingest.limits.max_events, max_body_bytes=ingest.max_body_bytes)
    )

    async def openapi(_request: web.Request) -> web.Response:
        return web.Response(body=described, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", ingest.healthz)
    app.router.add_get("/readyz", ingest.readyz)
    return app


def create_metrics_app(ingest: Ingest) -> web.Application:
    """``/metrics`` alone, for the internal metrics listener (``TENANTRY_METRICS_LISTEN``):
    never on the port producers reach, where anyone could read the tenant's counters."""
    app = web.Application(middlewares=[errors_middleware])
    app.router.add_get("/metrics", ingest.metrics_page)
    return app
