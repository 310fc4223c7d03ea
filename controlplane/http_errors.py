"""Domain errors become HTTP responses here, and only here.

``install`` registers the app's handlers: each ``errors.DomainError`` (raised by
services, which know nothing of HTTP) becomes ``{"error": {"code", "message",
"requestId"}}`` with its status and headers, OAuth errors take RFC 6749's shape, and
request validation, unknown routes, unstorable text and unexpected exceptions get the
same one shape (``body``).

A PostgreSQL or Redis outage is recognised by the classes of ``outages.py`` and is a
503 ``unavailable`` with ``Retry-After`` whichever route met it. Those classes get their
own handlers (not only the catch-all ``Exception`` one): Starlette answers handlers of
``Exception`` outside every middleware, where the response would have no request id
and the metrics would miss it.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from controlplane import outages
from controlplane.errors import DomainError, OAuthError
from tenantry.errors import error_body

log = logging.getLogger("tenantry.controlplane")


def _request_id(request: Request) -> str | None:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else None


def body(code: str, message: str, request: Request, **extra: Any) -> dict[str, Any]:
    """The one error shape (`tenantry.errors.error_body`), with this request's id."""
    return error_body(code, message, request_id=_request_id(request), **extra)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    request.state.error_code = exc.code
    if isinstance(exc, OAuthError):
        content: dict[str, Any] = {"error": exc.code, "error_description": exc.message}
        headers = {**exc.headers, "Cache-Control": "no-store"}
        return JSONResponse(content, status_code=exc.status, headers=headers)
    return JSONResponse(
        body(exc.code, exc.message, request), status_code=exc.status, headers=exc.headers
    )


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Echo where and why, never the submitted value (it may be a password).
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return JSONResponse(
        body("invalid_input", "request validation failed", request, details=details),
        status_code=422,
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "content_too_large"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        body(code, str(exc.detail), request),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unstorable(request: Request, _exc: Exception) -> JSONResponse:
    # A last line of defence behind the schemas' own checks: never a 500 for bad text.
    return JSONResponse(
        body("invalid_input", "text contains characters that cannot be stored", request),
        status_code=422,
    )


async def _dependency(request: Request, exc: Exception) -> JSONResponse:
    """A driver's error: a 503 when it says PostgreSQL or Redis is unavailable, else
    what it is, an unexpected error."""
    dependency = outages.dependency_of(exc)
    if dependency is None:
        return await _unexpected(request, exc)
    # The type only: driver messages can carry addresses, user names or values.
    log.warning(
        "%s unavailable: %s",
        dependency,
        type(exc).__name__,
        extra={"request_id": getattr(request.state, "request_id", "")},
    )
    request.state.dependency_unavailable = dependency  # counted by observability.py
    return await _domain(request, outages.DependencyUnavailable(dependency))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The exception type and request id only: messages of driver errors can quote values.
    if outages.dependency_of(exc) is not None:  # reached here through another type
        return await _dependency(request, exc)
    log.error(
        "unhandled error",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"request_id": getattr(request.state, "request_id", "")},
    )
    return JSONResponse(body("internal", "internal error", request), status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers: the one place where errors become HTTP responses."""
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(asyncpg.CharacterNotInRepertoireError, _unstorable)
    app.add_exception_handler(asyncpg.UntranslatableCharacterError, _unstorable)
    for driver_error in outages.HANDLED:
        app.add_exception_handler(driver_error, _dependency)
    app.add_exception_handler(Exception, _unexpected)
