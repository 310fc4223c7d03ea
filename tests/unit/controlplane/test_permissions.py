"""The grant grammar and its evaluation, including scopes and escalation checks."""

from __future__ import annotations

import pytest

from controlplane.rbac import permissions
from controlplane.rbac.permissions import Grants, InvalidGrant, parse


def test_parse_accepts_the_documented_forms() -> None:
    assert str(parse("tenants:create")) == "tenants:create"
    assert str(parse("tenants:*")) == "tenants:*"
    assert str(parse("*")) == "*"
    assert str(parse("tenants")) == "tenants:*"
    grant = parse("dashboards:write@dashboard/sales")
    assert (grant.scope_kind, grant.scope_name) == ("dashboard", "sales")
    assert parse("apikeys:manage@tenant/acme").scope_kind == "tenant"


@pytest.mark.parametrize(
    "text",
    [
        "tenants:fly",
        "rockets:read",
        "*:read",
        "billing:read@tenant/acme",
        "tenants:read@dashboard/x",
        "tenants:read@tenant/Acme",
        "tenants:read@tenant/",
        "TENANTS:READ",
        "",
    ],
)
def test_parse_rejects_anything_else(text: str) -> None:
    with pytest.raises(InvalidGrant):
        parse(text)


def test_scoped_grants_apply_to_their_object_only() -> None:
    grants = Grants.of(["tenants:read@tenant/acme", "orgs:read"])
    assert grants.allows("tenants:read", scope=("tenant", "acme"))
    assert not grants.allows("tenants:read", scope=("tenant", "other"))
    assert not grants.allows("tenants:read")  # org-wide needs an unscoped grant
    assert grants.allows_somewhere("tenants:read")
    assert not grants.allows("tenants:update", scope=("tenant", "acme"))
    assert grants.allows("orgs:read")


def test_wildcards() -> None:
    assert Grants.of(["*"]).allows("billing:manage")
    admin = Grants.of(list(permissions.BUILTIN_ROLES["admin"]))
    assert admin.allows("tenants:delete", scope=("tenant", "x"))
    assert not admin.allows("orgs:delete")
    assert not admin.allows("billing:manage")


def test_includes_prevents_escalation() -> None:
    admin = Grants.of(list(permissions.BUILTIN_ROLES["admin"]))
    owner = Grants.of(list(permissions.BUILTIN_ROLES["owner"]))
    assert owner.includes(admin)
    assert not admin.includes(owner)
    assert admin.includes(Grants.of(["tenants:read@tenant/acme", "dashboards:*"]))
    assert not admin.includes(Grants.of(["orgs:delete"]))
    scoped = Grants.of(["tenants:*@tenant/acme"])
    assert scoped.includes(Grants.of(["tenants:read@tenant/acme"]))
    assert not scoped.includes(Grants.of(["tenants:read"]))
    assert not scoped.includes(Grants.of(["tenants:read@tenant/other"]))


def test_builtin_roles_only_name_known_permissions() -> None:
    for role, texts in permissions.BUILTIN_ROLES.items():
        assert Grants.of(list(texts)).items, role
    viewer = permissions.role_grants("viewer", {})
    assert viewer.allows("tenants:read")
    assert not viewer.allows("tenants:create")
    assert permissions.role_grants("custom", {"custom": ["audit:read"]}).allows("audit:read")
    assert not permissions.role_grants("missing", {}).items
