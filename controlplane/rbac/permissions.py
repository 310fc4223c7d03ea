"""The permission vocabulary and the pure rules that evaluate grants.

A permission is ``resource:action``. A grant is a permission, optionally with a wildcard
(``tenants:*``, ``*``) and optionally scoped to one object: ``tenants:read@tenant/acme``
or ``dashboards:write@dashboard/sales``. A scoped grant allows the action on that object
only; an unscoped one on every object of the organisation. Built-in roles are fixed
here; custom roles are lists of grants stored per organisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PERMISSIONS: frozenset[str] = frozenset(
    {
        "orgs:read",
        "orgs:update",
        "orgs:delete",
        "members:read",
        "members:manage",
        "roles:read",
        "roles:manage",
        "tenants:read",
        "tenants:create",
        "tenants:update",
        "tenants:delete",
        "tenants:restore",
        "dashboards:read",
        "dashboards:write",
        "apikeys:read",
        "apikeys:manage",
        "audit:read",
        "billing:read",
        "billing:manage",
        "webhooks:read",
        "webhooks:manage",
    }
)
SCOPE_KINDS = {"tenant": "tenants", "dashboard": "dashboards"}
"""Which resources a scope kind may narrow: tenant scopes tenants and their API keys."""
_SCOPABLE = {"tenant": {"tenants", "apikeys"}, "dashboard": {"dashboards"}}

_GRANT = re.compile(
    r"^(?P<resource>[a-z]+|\*)(?::(?P<action>[a-z]+|\*))?"
    r"(?:@(?P<kind>tenant|dashboard)/(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?))?$"
)

BUILTIN_ROLES: dict[str, tuple[str, ...]] = {
    "owner": ("*",),
    "admin": (
        "orgs:read",
        "orgs:update",
        "members:*",
        "roles:*",
        "tenants:*",
        "dashboards:*",
        "apikeys:*",
        "audit:read",
        "billing:read",
        "webhooks:*",
    ),
    "editor": (
        "orgs:read",
        "members:read",
        "roles:read",
        "tenants:read",
        "tenants:create",
        "tenants:update",
        "dashboards:*",
        "apikeys:*",
    ),
    "viewer": ("orgs:read", "members:read", "tenants:read", "dashboards:read"),
    "billing": ("orgs:read", "members:read", "billing:*"),
}


@dataclass(frozen=True)
class Grant:
    resource: str
    action: str
    scope_kind: str | None = None
    scope_name: str | None = None

    def __str__(self) -> str:
        text = f"{self.resource}:{self.action}" if self.resource != "*" else "*"
        if self.scope_kind:
            text += f"@{self.scope_kind}/{self.scope_name}"
        return text

    def covers(self, permission: str, *, scope: tuple[str, str] | None) -> bool:
        """True when this grant allows ``permission`` on the object ``scope`` (or org-wide
        when ``scope`` is None: then only unscoped grants count)."""
        resource, action = permission.split(":", 1)
        if self.resource not in ("*", resource) or self.action not in ("*", action):
            return False
        if self.scope_kind is None:
            return True
        return scope == (self.scope_kind, self.scope_name)


class InvalidGrant(ValueError):
    pass


def parse(text: str) -> Grant:
    """Parse and validate one grant against the vocabulary."""
    match = _GRANT.match(text)
    if not match:
        raise InvalidGrant(f"{text!r} is not resource:action[@tenant/<name>|@dashboard/<name>]")
    resource, action = match["resource"], match["action"] or "*"
    if resource == "*" and action != "*":
        raise InvalidGrant(f"{text!r}: a wildcard resource takes no action")
    resources = {p.split(":")[0] for p in PERMISSIONS}
    if resource != "*" and resource not in resources:
        raise InvalidGrant(f"{text!r}: unknown resource {resource!r}")
    if action != "*" and f"{resource}:{action}" not in PERMISSIONS:
        raise InvalidGrant(f"{text!r}: unknown permission {resource}:{action}")
    kind, name = match["kind"], match["name"]
    if kind and resource not in _SCOPABLE[kind]:
        raise InvalidGrant(f"{text!r}: {resource} cannot be scoped to a {kind}")
    return Grant(resource, action, kind, name)


@dataclass(frozen=True)
class Grants:
    """Everything one member may do in one organisation."""

    items: tuple[Grant, ...]

    @classmethod
    def of(cls, texts: list[str] | tuple[str, ...]) -> Grants:
        return cls(tuple(parse(t) for t in texts))

    def allows(self, permission: str, *, scope: tuple[str, str] | None = None) -> bool:
        return any(g.covers(permission, scope=scope) for g in self.items)

    def allows_somewhere(self, permission: str) -> bool:
        """True when some grant allows ``permission`` on at least one object."""
        resource, action = permission.split(":", 1)
        return any(g.resource in ("*", resource) and g.action in ("*", action) for g in self.items)

    def includes(self, other: Grants) -> bool:
        """True when every grant of ``other`` is implied by these (no escalation)."""
        for grant in other.items:
            perms = [
                p
                for p in PERMISSIONS
                if grant.resource in ("*", p.split(":")[0])
                and grant.action in ("*", p.split(":")[1])
            ]
            scope = (grant.scope_kind, grant.scope_name) if grant.scope_kind else None
            if not all(self.allows(p, scope=scope) for p in perms):  # type: ignore[arg-type]
                return False
        return True


def role_grants(role: str, custom: dict[str, list[str]]) -> Grants:
    if role in BUILTIN_ROLES:
        return Grants.of(BUILTIN_ROLES[role])
    return Grants.of(custom.get(role, []))
