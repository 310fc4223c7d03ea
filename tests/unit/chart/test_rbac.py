"""RBAC is least privilege: the operator may touch what it manages, and nothing else.

The expected rules are derived from the operator's own tables (the kinds it prunes and
the children it watches), so a new kind in the operator without a matching rule, or a
rule for a kind the operator no longer manages, fails here.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from tenantry_operator import apply, children

from tests.unit.chart.helm import Obj, find, one, render

OP = "t-tenantry-operator"
CP = "t-tenantry-controlplane"
READ = {"get", "list", "watch"}
MANAGE = READ | {"create", "patch", "delete"}
NEVER = {"*", "update", "deletecollection", "escalate", "bind", "impersonate", "approve", "sign"}


def _grants(role: Obj) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, merged over the rules (resourceNames only narrow a
    rule, so a rule with them counts here as if it had none: the stricter reading)."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out[(group, resource)] |= set(rule["verbs"])
    return dict(out)


def _expected_operator_grants() -> dict[tuple[str, str], set[str]]:
    expected: dict[tuple[str, str], set[str]] = {
        ("tenantry.io", "tenants"): READ | {"patch"},
        ("tenantry.io", "dashboards"): READ | {"patch"},
        ("tenantry.io", "tenants/status"): {"get", "patch"},
        ("tenantry.io", "dashboards/status"): {"get", "patch"},
        ("tenantry.io", "restores"): READ | {"patch"},
        ("tenantry.io", "restores/status"): {"get", "patch"},
        # a Restore's Job: created once and followed, never changed or deleted
        ("batch", "jobs"): READ | {"create"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): READ,
        # posted on Tenants, Dashboards and Restores; read for the warnings about tenants' pods
        ("", "events"): READ | {"create", "patch"},
        ("events.k8s.io", "events"): {"create", "patch"},
        ("", "namespaces"): MANAGE,
        # generated credentials: created once, never changed or deleted
        ("", "secrets"): READ | {"create"},
        # ClickHouse pods: watched, and labelled once their host has the schema
        ("", "pods"): READ | {"patch"},
        # a restore Job's log: its progress (restore_progress), read only
        ("", "pods/log"): {"get"},
        # volumes grow in place (patch), never created or deleted by the operator
        ("", "persistentvolumeclaims"): READ | {"patch"},
    }
    for k in apply.PRUNABLE:
        expected[(k.api_version.rpartition("/")[0], k.plural)] = MANAGE
    return expected


def test_operator_cluster_role_is_exactly_what_it_manages() -> None:
    role = one(render(), "ClusterRole", OP)
    assert _grants(role) == _expected_operator_grants()


def test_operator_can_watch_every_child_kind_it_watches() -> None:
    grants = _grants(one(render(), "ClusterRole", OP))
    for child in children.CHILDREN:  # listwatch lists and watches each of these
        group = child.api_version.rpartition("/")[0]
        assert grants[(group, child.plural)] >= READ, child.plural


def test_operator_can_watch_and_label_the_clickhouse_pods() -> None:
    grants = _grants(one(render(), "ClusterRole", OP))
    assert children.PODS.api_version == "v1"
    assert grants[("", children.PODS.plural)] >= READ | {"patch"}


def test_operator_can_watch_the_events_it_reads() -> None:
    grants = _grants(one(render(), "ClusterRole", OP))
    assert children.EVENTS.api_version == "v1"  # listwatch watches /api/v1/events
    assert grants[("", children.EVENTS.plural)] >= READ


@pytest.mark.parametrize("name", [OP, CP])
def test_no_wildcards_escalation_or_rbac_access(name: str) -> None:
    grants = _grants(one(render(), "ClusterRole", name))
    for (group, resource), verbs in grants.items():
        assert not verbs & NEVER, (group, resource, verbs & NEVER)
        assert "*" not in (group, resource)
        assert group != "rbac.authorization.k8s.io"
        assert resource not in ("nodes", "clusterroles", "clusterrolebindings")


def test_bindings_point_at_the_release_service_accounts() -> None:
    objs = render()
    for name in (OP, CP):
        binding = one(objs, "ClusterRoleBinding", name)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": name,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name, "namespace": "tenantry-system"}
        ]


def test_controlplane_only_touches_its_custom_resources() -> None:
    role = one(render(), "ClusterRole", CP)
    grants = _grants(role)
    verbs = {"get", "list", "watch", "create", "patch", "delete"}
    assert grants == {
        ("tenantry.io", "tenants"): verbs,
        ("tenantry.io", "dashboards"): verbs,
        # a tenant page's restores: created and listed, never changed or deleted
        ("tenantry.io", "restores"): {"get", "list", "create"},
        ("", "secrets"): {"get"},
    }
    # Of the secrets, only the tenants' ClickHouse credentials (the reader password).
    [secrets] = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secrets["resourceNames"] == ["clickhouse-credentials"]


def test_controlplane_without_kubernetes_gets_no_role_and_no_token() -> None:
    objs = render({"controlplane": {"config": {"kubeEnabled": False}}})
    assert not find(objs, "ClusterRole", CP)
    assert not find(objs, "ClusterRoleBinding", CP)
    deployment = one(objs, "Deployment", CP)
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_rbac_create_false_renders_no_cluster_roles() -> None:
    objs = render(
        {"operator": {"rbac": {"create": False}}, "controlplane": {"rbac": {"create": False}}}
    )
    assert not find(objs, "ClusterRole")
    assert not find(objs, "ClusterRoleBinding")


def test_existing_service_account_must_be_named() -> None:
    objs = render({"operator": {"serviceAccount": {"create": False, "name": "ops"}}})
    assert not find(objs, "ServiceAccount", OP)
    deployment = one(objs, "Deployment", OP)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    assert one(objs, "ClusterRoleBinding", OP)["subjects"][0]["name"] == "ops"
