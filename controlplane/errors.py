"""One hierarchy of domain errors; ``http_errors`` maps them to HTTP in one place.

Services raise these; they never raise ``HTTPException``, and this module imports no
web framework, so services stay free of FastAPI. Each error carries the status and code
its response will have (``{"error": {"code", "message", "requestId"}}``). Messages are
written for API users and must never carry secrets, SQL or stack traces.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


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
    """Something the request needs is not available now (Kubernetes, a tenant's
    ClickHouse; PostgreSQL or Redis: ``outages.DependencyUnavailable``, with
    ``Retry-After``)."""

    status = 503
    code = "unavailable"
