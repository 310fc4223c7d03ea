"""Request-scoped dependencies shared by every domain router.

``AppState`` is built once by the app factory (pool, Redis, key ring, Kubernetes client)
and hung on ``app.state``; routers reach it only through these dependencies, so the
service and repository layers receive plain objects and stay testable without HTTP.
``Conn`` is the one transaction of a request: it commits when the endpoint returns and
rolls back when it raises, before the response is sent. ``AfterCommit`` is the response
for work that must wait for that commit and whose outcome the response reports.
``Info`` is the caller's ``context.RequestInfo`` and ``PerIp`` rate-limits a route per
client address (``ratelimit.RateLimiter`` counts).

This is the web layer: it imports services (the audit trail), never the reverse.
Services take the plain values of ``context.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from controlplane import clientaddr, db
from controlplane.audit import service as audit
from controlplane.auth.service import Auth
from controlplane.context import Membership, RequestInfo
from controlplane.errors import AuditNote, DomainError, RateLimited
from controlplane.kube import KubeResources
from controlplane.mail import Mailer
from controlplane.observability import Metrics
from controlplane.ratelimit import RateLimiter
from controlplane.rbac.access_cache import AccessCache
from controlplane.settings import Settings


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    auth: Auth
    kube: KubeResources | None
    metrics: Metrics
    limiter: RateLimiter
    mailer: Mailer | None
    access: AccessCache[Membership]


def app_state(request: Request) -> AppState:
    state = request.app.state.cp
    assert isinstance(state, AppState)
    return state


async def _state_dependency(request: Request) -> AppState:
    # async on purpose: FastAPI runs plain-def dependencies in a thread pool, a thread
    # hand-off per request for what is an attribute lookup.
    return app_state(request)


State = Annotated[AppState, Depends(_state_dependency)]


_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _transaction(request: Request) -> AsyncIterator[asyncpg.Connection]:
    try:
        async with db.transaction(app_state(request).pool) as conn:
            yield conn
    except DomainError as exc:
        # The transaction rolled back and its connection is back in the pool. Record
        # what the failure must leave in the audit trail: the note the error carries,
        # or, for a failed change in an organisation, the failed attempt itself.
        note = exc.audit
        org_id = getattr(request.state, "audit_org", None)
        if note is None and request.method in _MUTATING and org_id is not None:
            route = getattr(request.scope.get("route"), "path", request.url.path)
            note = AuditNote(
                org_id=org_id,
                actor=str(getattr(request.state, "actor", "")),
                action="request.failed",
                target=request.url.path[:300],
                outcome="failure",
                detail={"method": request.method, "route": str(route), "code": exc.code},
            )
        if note is not None:
            await record_note(request, note)
        raise
    request.state.committed = True  # committed, and the connection is back in the pool
    org_id = getattr(request.state, "audit_org", None)
    if request.method in _MUTATING and org_id is not None:
        # Read-your-writes in this process: a change to members or roles is seen by the
        # next request at once; other processes learn it from PostgreSQL's notification.
        app_state(request).access.notified(str(org_id))  # as the NOTIFY will say


async def record_note(request: Request, note: AuditNote) -> None:
    """Write ``note`` in a transaction of its own (the request's, if any, rolls back)."""
    await audit.record_separately(
        app_state(request).pool,
        org_id=note.org_id,
        actor=note.actor,
        action=note.action,
        target=note.target,
        info=request_info(request),
        outcome=note.outcome,
        detail=dict(note.detail),
    )


# scope="function": commit (or roll back) before the response leaves, so a client that
# sees 201 can immediately read what it created.
Conn = Annotated[asyncpg.Connection, Depends(_transaction, scope="function")]


class AfterCommit(JSONResponse):
    """A JSON response whose body is made once the request's transaction committed.

    FastAPI closes function-scoped dependencies (``Conn``: commit, connection back to the
    pool) after the endpoint returned and before it sends the response, which it does by
    calling it. ``finish`` runs then: with the data committed and no pooled connection
    held, the place for a side effect outside the database whose outcome the response
    reports (an invitation e-mail). Use it only on routes that take ``Conn``.
    """

    def __init__(self, finish: Callable[[], Awaitable[BaseModel]], *, status_code: int) -> None:
        super().__init__(content=None, status_code=status_code)
        self._finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not scope.get("state", {}).get("committed"):
            raise RuntimeError("AfterCommit response sent before its transaction committed")
        model = await self._finish()
        self.body = self.render(model.model_dump(mode="json"))
        self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


def client_ip(request: Request, settings: Settings) -> str:
    """The client's address (``clientaddr.py``): the peer, or with
    ``trust_forwarded_for`` what the trusted proxies in front of us say."""
    peer = request.client.host if request.client else None
    if not settings.trust_forwarded_for:
        return clientaddr.client_address(peer, (), ())
    return clientaddr.client_address(
        peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies
    )


def request_info(request: Request) -> RequestInfo:
    state = app_state(request)
    rid = getattr(request.state, "request_id", "")
    return RequestInfo(
        ip=client_ip(request, state.settings),
        user_agent=request.headers.get("user-agent", "")[:256],
        request_id=rid if isinstance(rid, str) else "",
    )


async def _info_dependency(request: Request) -> RequestInfo:
    return request_info(request)


Info = Annotated[RequestInfo, Depends(_info_dependency)]


class PerIp:
    """Dependency: rate-limit a route per client IP (``oauth``: refuse as RFC 6749 does)."""

    def __init__(self, bucket: str, *, oauth: bool = False) -> None:
        self.bucket = bucket
        self.oauth = oauth

    async def __call__(self, request: Request) -> None:
        state = app_state(request)
        ip = client_ip(request, state.settings)
        try:
            await state.limiter.hit(f"{self.bucket}:ip", ip, limit=state.limiter.per_ip)
        except RateLimited as exc:
            if self.oauth:
                raise exc.as_oauth() from None
            raise
