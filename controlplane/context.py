"""Who is calling, from where, and what they may do: plain values, no web framework.

The routers' dependencies (``deps.py``, ``rbac/dependencies.py``) build these from the
request; services take them as arguments. Keeping them here, in a module that imports
no FastAPI, lets services depend on them without depending on the web layer, and keeps
the web layer -> services -> repositories graph free of cycles (an import-linter
contract in ``.importlinter`` checks both).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from controlplane.orgs.repository import OrgRow
from controlplane.rbac.permissions import Grants


@dataclass(frozen=True)
class RequestInfo:
    """Who is calling from where: what the audit trail records besides the actor."""

    ip: str
    user_agent: str
    request_id: str


@dataclass(frozen=True)
class Principal:
    """A signed-in user, as their verified access token says."""

    user_id: uuid.UUID
    session: str
    client_id: str


@dataclass(frozen=True)
class Membership:
    """What a member may do in an organisation (what ``AccessCache`` keeps)."""

    org: OrgRow
    role: str
    grants: Grants


@dataclass(frozen=True)
class OrgAccess(Membership):
    """A principal's access to one organisation (their membership, and who they are),
    checked by the route's permission."""

    principal: Principal

    def allows(self, permission: str, *, scope: tuple[str, str] | None = None) -> bool:
        return self.grants.allows(permission, scope=scope)


SERVICE_CLIENT = "tenantry-internal"
"""``client_id`` of the principal standing for the internal service token."""
SERVICE_PRINCIPAL = Principal(
    user_id=uuid.UUID(int=0), session="internal", client_id=SERVICE_CLIENT
)
"""The internal service (ingestion, the operator, the billing closer) as a principal. User
ids are random version-4 UUIDs (``gen_random_uuid()``), never the nil one, so no signed-in
user is equal to it."""
SERVICE_ACTOR = "service:internal"
"""The audit actor of the internal service."""
