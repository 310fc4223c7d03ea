"""The permission of machine-to-machine routes under ``/internal``.

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

from controlplane.billing.access import billing_settings
from controlplane.errors import Unauthenticated
from controlplane.rbac.dependencies import Bearer, Declared


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
        request.state.actor = "service:internal"
