"""The RBAC matrix: every organisation route, a sample request, and the built-in roles
that may call it. Written out by hand on purpose: it is the specification the
permission declarations and the role table must agree with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

ALL = frozenset({"owner", "admin", "editor", "viewer", "billing"})
MANAGERS = frozenset({"owner", "admin"})
WRITERS = frozenset({"owner", "admin", "editor"})
READERS = frozenset({"owner", "admin", "editor", "viewer"})
BILLING_READERS = frozenset({"owner", "admin", "billing"})
BILLING_MANAGERS = frozenset({"owner", "billing"})

DASH_SPEC: dict[str, Any] = {
    "tenantRef": {"name": "t1"},
    "title": "Matrix",
    "panels": [{"id": "p", "title": "P", "sql": "SELECT 1"}],
}


@dataclass(frozen=True)
class Call:
    method: str
    template: str
    allowed: frozenset[str]
    path: str = ""
    body: dict[str, Any] | None = None

    def url(self, org_id: str, role: str) -> str:
        path = self.path or self.template
        return path.format(
            org_id=org_id,
            tenant="t1",
            dashboard="d1",
            panel="p",
            user_id=uuid.uuid4(),
            role="matrix-role",
            key_id=uuid.uuid4(),
            invitation_id=uuid.uuid4(),
            invoice_id=uuid.uuid4(),
            me=role,
        )

    def json(self, role: str) -> dict[str, Any] | None:
        if self.body is None:
            return None
        out = {}
        for key, value in self.body.items():
            out[key] = value.format(me=role) if isinstance(value, str) else value
        return out


ORG = "/v1/orgs/{org_id}"
NIL = "00000000-0000-0000-0000-000000000000"
WH = ORG + "/webhooks/" + NIL
CALLS: list[Call] = [
    Call("GET", ORG, ALL),
    Call("PATCH", ORG, MANAGERS, body={"name": "renamed"}),
    Call("DELETE", ORG, frozenset({"owner"})),  # 409 for the owner: tenants exist
    Call("GET", ORG + "/billing", frozenset({"owner", "admin", "billing"})),
    Call("GET", ORG + "/members", ALL),
    Call(
        "POST",
        ORG + "/members",
        MANAGERS,
        body={"email": "nobody-{me}@example.com", "role": "viewer"},
    ),
    Call("PATCH", ORG + "/members/{user_id}", MANAGERS, body={"role": "viewer"}),
    Call("DELETE", ORG + "/members/{user_id}", MANAGERS),
    Call(
        "POST",
        ORG + "/invitations",
        MANAGERS,
        body={"email": "invitee-{me}@example.com", "role": "viewer"},
    ),
    Call("GET", ORG + "/invitations", MANAGERS),
    Call("DELETE", ORG + "/invitations/{invitation_id}", MANAGERS),
    Call("GET", ORG + "/roles", WRITERS),
    Call("PUT", ORG + "/roles/{role}", MANAGERS, body={"permissions": ["tenants:read"]}),
    Call("DELETE", ORG + "/roles/{role}", MANAGERS, path=ORG + "/roles/ghost-{me}"),
    Call("POST", ORG + "/tenants", WRITERS, body={"name": "m-{me}"}),
    Call("GET", ORG + "/tenants", READERS),
    Call("GET", ORG + "/notifications", READERS),
    Call("GET", ORG + "/tenants/{tenant}", READERS),
    Call("PUT", ORG + "/tenants/{tenant}", WRITERS, body={"spec": {"plan": "starter"}}),
    Call("DELETE", ORG + "/tenants/{tenant}", MANAGERS, path=ORG + "/tenants/ghost"),
    # 409 for managers here: t1 has no backup yet (a restore may overwrite data).
    Call("POST", ORG + "/tenants/{tenant}/restores", MANAGERS, body={"overwrite": True}),
    Call("GET", ORG + "/tenants/{tenant}/restores", READERS),
    Call("POST", ORG + "/dashboards", WRITERS, body={"name": "d-{me}", "spec": DASH_SPEC}),
    Call("GET", ORG + "/dashboards", READERS),
    Call("GET", ORG + "/dashboards/{dashboard}", READERS),
    Call("PUT", ORG + "/dashboards/{dashboard}", WRITERS, body={"spec": DASH_SPEC}),
    Call("DELETE", ORG + "/dashboards/{dashboard}", WRITERS, path=ORG + "/dashboards/ghost"),
    # 409 for readers here: no operator has validated the panel of d1.
    Call("GET", ORG + "/dashboards/{dashboard}/panels/{panel}/data", READERS),
    Call("GET", ORG + "/dashboards/{dashboard}/panels/{panel}/chart.svg", READERS),
    Call("POST", ORG + "/tenants/{tenant}/apikeys", WRITERS, body={"name": "k-{me}"}),
    Call("GET", ORG + "/tenants/{tenant}/apikeys", WRITERS),
    Call("DELETE", ORG + "/tenants/{tenant}/apikeys/{key_id}", WRITERS),
    # Billing (controlplane/billing): billing:read and billing:manage.
    Call("POST", ORG + "/usage", BILLING_MANAGERS, body={"events": []}),
    Call("GET", ORG + "/billing/plans", BILLING_READERS),
    Call("GET", ORG + "/billing/subscription", BILLING_READERS),
    Call("POST", ORG + "/billing/subscription", BILLING_MANAGERS, body={}),
    Call("PATCH", ORG + "/billing/subscription", BILLING_MANAGERS, body={}),
    Call("POST", ORG + "/billing/subscription/cancel", BILLING_MANAGERS),
    Call("GET", ORG + "/billing/usage", BILLING_READERS),
    Call("GET", ORG + "/billing/invoices/upcoming", BILLING_READERS),
    Call("GET", ORG + "/billing/invoices", BILLING_READERS),
    Call("GET", ORG + "/billing/invoices/{invoice_id}", BILLING_READERS),
    Call(
        "POST",
        ORG + "/billing/periods/{period}/close",
        BILLING_MANAGERS,
        path=ORG + "/billing/periods/2020-01/close",
    ),
    Call("POST", ORG + "/billing/invoices/{invoice_id}/finalize", BILLING_MANAGERS),
    # Webhooks (controlplane/webhooks): webhooks:read and webhooks:manage.
    Call("POST", ORG + "/webhooks", MANAGERS, body={"url": "https://127.0.0.1/{me}"}),
    Call("GET", ORG + "/webhooks", MANAGERS),
    Call("DELETE", ORG + "/webhooks/{webhook_id}", MANAGERS, path=ORG + "/webhooks/" + NIL),
    Call(
        "POST", ORG + "/webhooks/{webhook_id}/rotate-secret", MANAGERS, path=f"{WH}/rotate-secret"
    ),
    Call("POST", ORG + "/webhooks/{webhook_id}/enable", MANAGERS, path=f"{WH}/enable"),
    Call("GET", ORG + "/webhooks/{webhook_id}/deliveries", MANAGERS, path=f"{WH}/deliveries"),
    Call(
        "POST",
        ORG + "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        MANAGERS,
        path=f"{WH}/deliveries/1/redeliver",
    ),
    Call("GET", ORG + "/audit", MANAGERS),
    Call("GET", ORG + "/audit/export", MANAGERS),
    Call("GET", ORG + "/audit/verify", MANAGERS),
]
