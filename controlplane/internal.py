"""The machine-to-machine routes under ``/internal``: where they are served, and their
permission.

They are served on the internal listener only (``Settings.internal_port``; ``serve``
binds it apart from the public port, and the chart puts it behind a Service of its own
that no Ingress exposes). `ListenerGuard`, a middleware before any routing, answers 404, as
for a path that does not exist, to an internal path on any other port and to any other
path but the probes on the internal port: the public port does not even tell that the
internal API exists.

The ingestion pods (and the operator) call the control plane with one shared service
token, the same ``TENANTRY_CP_INTERNAL_TOKEN`` billing accepts for usage
(``controlplane.billing.access``), through one client (``tenantry.internal_client``);
the routes' paths and payloads are defined once in ``tenantry.internal_api``.
``InternalService`` is a ``Declared`` permission so the route-coverage test sees these
routes declared like every other; it compares the token in constant time and answers
401 for anything else, including an unset token (the routes are then closed, never
open).
"""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from controlplane import http_errors
from controlplane.billing.access import billing_settings
from controlplane.context import SERVICE_ACTOR
from controlplane.errors import Unauthenticated
from controlplane.rbac.dependencies import Bearer, Declared
from tenantry import internal_api

PROBES = frozenset({"/healthz", "/readyz"})
"""Served on both listeners: each is probed where it listens."""


class ListenerGuard:
    """ASGI middleware, before any routing or body parsing: a request for an internal
    path that did not come in on the internal listener (the server's port in the ASGI
    scope: the socket uvicorn accepted it on), or for any other path but the probes that
    did, gets the 404 of a path that does not exist."""

    def __init__(self, app: ASGIApp, *, internal_port: int) -> None:
        self.app = app
        self.internal_port = internal_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allowed(scope):
            request = Request(scope)
            response = JSONResponse(
                http_errors.body("not_found", "Not Found", request), status_code=404
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allowed(self, scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        if path in PROBES:
            return True
        server = scope.get("server")
        internal = server is not None and server[1] == self.internal_port
        return path.startswith(internal_api.PREFIX) == internal


class InternalService(Declared):
    """Require the internal service token as the bearer credential."""

    def __init__(self, permission: str) -> None:
        self.permission = permission

    async def __call__(self, request: Request, credentials: Bearer) -> None:
        token = billing_settings(request).internal_token
        presented = credentials.credentials if credentials is not None else ""
        expected = token.get_secret_value() if token is not None else ""
        valid = (
            bool(expected)
            and credentials is not None
            and credentials.scheme.lower() == "bearer"
            and hmac.compare_digest(presented.encode(), expected.encode())
        )
        if not valid:
            raise Unauthenticated("a valid internal service token is required")
        request.state.actor = SERVICE_ACTOR
