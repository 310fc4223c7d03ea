"""One hierarchy of domain errors, mapped to HTTP in one place.

Services raise these; they never raise ``HTTPException``. ``install`` registers the only
handlers, which turn each error into ``{"error": {"code", "message", "requestId"}}``.
Messages are written for API users and must never carry secrets, SQL or stack traces.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry.errors import error_body

log = logging.getLogger("tenantry.controlplane")


@dataclass(frozen=True)
class AuditNote:
    """An audit event that a failure must leave behind. The request's transaction rolls
    back, so the event is written after its connection went back to the pool (writing
    it while still holding that connection could starve the pool under a burst)."""

    org_id: uuid.UUID | None
    actor: str
    action: str
    target: str
    outcome: str
    detail: dict[str, str] = field(default_factory=dict)


class DomainError(Exception):
    """Base of every error the API reports on purpose."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.audit: AuditNote | None = None

    def noted(self, note: AuditNote) -> DomainError:
        """This error, carrying the audit event to record for it."""
        self.audit = note
        return self


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"

    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PlanLimitExceeded(DomainError):
    status = 403
    code = "plan_limit_exceeded"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many requests; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after

    def as_oauth(self) -> OAuthError:
        """The same refusal in the token endpoint's RFC 6749 shape. RFC 6749 has no code
        for it; ``slow_down`` is the one registered for the token endpoint (RFC 8628,
        section 3.5) and says what to do, ``Retry-After`` says when."""
        return OAuthError("slow_down", self.message, status=429, headers=dict(self.headers))


class OAuthError(DomainError):
    """RFC 6749 section 5.2 errors: the body uses ``error``/``error_description``."""

    status = 400

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description, headers=headers)
        self.code = error
        self.status = status


class Unavailable(DomainError):
    status = 503
    code = "unavailable"


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


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The exception type and request id only: messages of driver errors can quote values.
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
    app.add_exception_handler(Exception, _unexpected)
