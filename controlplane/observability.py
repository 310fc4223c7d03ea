"""Request ids, JSON access logs and Prometheus metrics, as one pure ASGI middleware.

Each request gets an id (the caller's ``X-Request-ID`` when it is a short token, else a
new one) that is returned in the response, written in every log line and stored in
audit events. Log lines carry method, route template, status and duration, never
headers, bodies or query strings (which may hold codes, tokens or passwords). Metrics
are labelled by route template, not raw path, so ids don't explode cardinality.
A request answered 503 because PostgreSQL or Redis was unavailable (``outages.py``) is
also counted by that dependency, a label of two values, and so is each read authorised
from what a cache last confirmed while that dependency could not be reached.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane import outages
from tenantry.errors import request_id

access_log = logging.getLogger("tenantry.controlplane.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra`` fields with known names are included."""

    FIELDS = (
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "actor",
        "error_code",
        "invitation_id",
        "mail_error",
    )

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                data[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            data["exc_type"] = record.exc_info[0].__name__
        return json.dumps(data, separators=(",", ":"))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("tenantry.controlplane")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


# The series the chart's alerts read (charts/tenantry/templates/monitoring): named once.
HTTP_REQUESTS = "tenantry_http_requests_total"
HTTP_LATENCY = "tenantry_http_request_duration_seconds"


class Metrics:
    """The app's counters. Nothing on the public port exposes them: ``serve`` scrapes
    them, summed over its worker processes, on the internal port (``metrics_listener``);
    in-process users (tests) read ``registry`` directly."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            HTTP_REQUESTS,
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            HTTP_LATENCY,
            "HTTP request latency by method and route template.",
            ("method", "route"),
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.dependency_unavailable = Counter(
            "tenantry_dependency_unavailable_total",
            "Requests answered 503 because PostgreSQL or Redis was unavailable, by dependency.",
            ("dependency",),
            registry=self.registry,
        )
        self.stale_reads = Counter(
            "tenantry_stale_reads_total",
            "Reads authorised from what a cache last confirmed because PostgreSQL or Redis "
            "could not be reached (the bounded-staleness policy), by dependency.",
            ("dependency",),
            registry=self.registry,
        )
        for dependency in outages.DEPENDENCIES:  # every series exists from the start, at 0
            self.dependency_unavailable.labels(dependency)
            self.stale_reads.labels(dependency)


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
        rid = request_id(incoming)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Answered outside us, by the catch-all handler: an outage met through a type
            # http_errors has no handler of its own for is still its 503.
            dependency = outages.dependency_of(exc)
            if dependency is not None:
                status = 503
                scope.setdefault("state", {})["dependency_unavailable"] = dependency
            raise
        finally:
            elapsed = time.perf_counter() - started
            route_obj = scope.get("route")
            route = getattr(route_obj, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            state = scope.get("state", {})
            dependency = state.get("dependency_unavailable")
            if dependency in outages.DEPENDENCIES:
                self.metrics.dependency_unavailable.labels(dependency).inc()
            extra: dict[str, Any] = {
                "request_id": rid,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            }
            if "actor" in state:
                extra["actor"] = state["actor"]
            if "error_code" in state:
                extra["error_code"] = state["error_code"]
            access_log.info("request", extra=extra)
