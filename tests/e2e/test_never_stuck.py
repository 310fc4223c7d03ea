"""A Tenant never sits silently stuck: whatever keeps its stack from coming up shows on the
Tenant as Degraded with a reason and Kubernetes' own words, and a Warning event.

Each test makes one class of failure happen for real on the local cluster: the operator's
own quota check, a ResourceQuota or an admission policy refusing what the operator
creates, a volume that cannot be provisioned, a pod no node can take, and objects written
before the CRD's rules existed (the CRD is relaxed for a moment, as an older operator
version would have installed it, then restored).
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_tenant_lifecycle import condition, events, hosts, status, wait_phase
from tests.support.kube import Kube
from tests.support.wait import eventually

REPO = Path(__file__).resolve().parents[2]
SOON = 60  # generous: the machine may be loaded; the operator acts within seconds


def degraded(kube: Kube, name: str, reason: str, timeout: float = SOON) -> dict[str, Any]:
    """The Degraded condition once it is True with ``reason`` for the current generation."""

    def check() -> dict[str, Any] | None:
        obj = kube.get("tenant", name)
        cond = condition(kube, name, "Degraded")
        fresh = cond.get("observedGeneration") == obj["metadata"]["generation"]
        return cond if fresh and cond.get("status") == "True" and cond["reason"] == reason else None

    found = eventually(check, timeout=timeout, what=f"{name} Degraded {reason}")
    assert found is not None  # eventually returns what `check` gave once truthy
    return found


def warned(kube: Kube, name: str, reason: str) -> list[str]:
    return [
        e["message"] for e in events(kube, name) if e["type"] == "Warning" and e["reason"] == reason
    ]


# -- the operator's own check: the plan's quota, before anything is created ---------------
def test_a_stack_over_the_plan_quota_is_refused_before_anything_exists(
    crds: Kube, make_tenant: Any
) -> None:
    # Every value is within the CRD's bounds; ten hosts of 2 cores are not (starter: 16).
    name = make_tenant("ns-quota", {"clickhouse": {"shards": 10}})
    cond = degraded(crds, name, "QuotaExceeded")
    assert (
        "limits.cpu: the stack needs 21600m but the starter plan's quota is 16" in (cond["message"])
    )
    assert "[spec.clickhouse.resources.limits.cpu]" in cond["message"]
    assert status(crds, name)["phase"] == "Refused"
    assert condition(crds, name, "Ready")["reason"] == "QuotaExceeded"
    eventually(lambda: warned(crds, name, "QuotaExceeded"), timeout=SOON, what="Warning event")
    assert crds.get_or_none("namespace", f"tenant-{name}") is None  # nothing partial


def test_a_running_stack_is_left_as_it_is_when_a_change_exceeds_the_quota(
    crds: Kube, make_tenant: Any
) -> None:
    name = make_tenant("ns-grow", {})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"clickhouse":{"shards":9}}}')
    cond = degraded(crds, name, "QuotaExceeded")
    assert "ClickHouse 9 x 2 [spec.clickhouse.resources.limits.cpu]" in cond["message"]
    assert status(crds, name)["phase"] == "Degraded"
    assert set(hosts(crds, ns)) == {"ch-s0-r0"}  # no host of the refused spec was created
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"clickhouse":{"shards":2}}}')
    st = wait_phase(crds, name, "Ready")
    assert st["hosts"] == "2/2"
    assert condition(crds, name, "Degraded")["status"] == "False"


def test_a_schedule_the_crd_cannot_judge_is_refused_by_the_operator(
    crds: Kube, make_tenant: Any
) -> None:
    """A range that ends before it starts passes the CRD's pattern; Kubernetes would
    refuse the CronJob. The operator refuses the Tenant first, naming the field."""
    name = make_tenant("ns-cron", {"backup": {"bucket": "backups", "schedule": "30-10 3 * * *"}})
    cond = degraded(crds, name, "InvalidSpec")
    assert "spec.backup.schedule: minute range '30-10' ends before it starts" in cond["message"]
    assert status(crds, name)["phase"] == "Refused"
    assert crds.get_or_none("namespace", f"tenant-{name}") is None


# -- Kubernetes refusing what the operator creates ---------------------------------------
@pytest.fixture
def namespace(crds: Kube) -> Iterator[Any]:
    """Prepare the namespace a Tenant of that name will use (as an admin's policy might)."""
    made: list[str] = []

    def make(name: str) -> str:
        ns = f"tenant-{name}"
        crds.run("create", "namespace", ns)
        made.append(ns)
        return ns

    yield make
    for ns in made:
        crds.try_run("delete", "namespace", ns, "--wait=false")


def test_pods_a_resource_quota_refuses_show_on_the_tenant(
    crds: Kube, operator_process: Any, namespace: Any
) -> None:
    name = f"ns-admin-quota-{secrets.token_hex(2)}"
    ns = namespace(name)
    crds.run("create", "quota", "admin-limit", "-n", ns, "--hard=pods=2")
    crds.apply(
        {
            "apiVersion": "tenantry.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {},
        }
    )
    try:
        cond = degraded(crds, name, "QuotaExceeded")
        assert "a ResourceQuota of the namespace refuses them" in cond["message"]
        assert "exceeded quota: admin-limit" in cond["message"]
        assert status(crds, name)["phase"] == "Degraded"
        eventually(lambda: warned(crds, name, "QuotaExceeded"), timeout=SOON, what="event")
        crds.run("delete", "quota", "admin-limit", "-n", ns)
        wait_phase(crds, name, "Ready", timeout=120)
        assert condition(crds, name, "Degraded")["status"] == "False"
    finally:
        crds.try_run("delete", "tenant", name, "--wait=false")


def test_an_admission_policy_refusing_a_child_shows_on_the_tenant(
    crds: Kube, operator_process: Any, namespace: Any
) -> None:
    name = f"ns-policy-{secrets.token_hex(2)}"
    ns = namespace(name)
    policy = f"deny-config-{name}"
    crds.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "object.metadata.name != 'clickhouse-config'",
                        "message": "clickhouse-config is not allowed by the site policy",
                    }
                ],
            },
        }
    )
    crds.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {
                "policyName": policy,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
                },
            },
        }
    )
    probe = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "clickhouse-config", "namespace": ns},
    }
    try:
        eventually(
            lambda: (
                crds.try_run("create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe)).code
                != 0
            ),
            timeout=SOON,
            what="the policy in force",
        )
        crds.apply(
            {
                "apiVersion": "tenantry.io/v1alpha1",
                "kind": "Tenant",
                "metadata": {"name": name},
                "spec": {},
            }
        )
        cond = degraded(crds, name, "ApplyRefused")
        assert cond["message"].startswith("Kubernetes refused ConfigMap clickhouse-config")
        assert "clickhouse-config is not allowed by the site policy" in cond["message"]
        eventually(lambda: warned(crds, name, "ApplyRefused"), timeout=SOON, what="event")
        crds.run("delete", "validatingadmissionpolicybinding", policy)
        wait_phase(crds, name, "Ready", timeout=120)  # retried with a backoff, no edit
    finally:
        crds.try_run("delete", "validatingadmissionpolicybinding", policy, "--ignore-not-found")
        crds.try_run("delete", "validatingadmissionpolicy", policy, "--ignore-not-found")
        crds.try_run("delete", "tenant", name, "--wait=false")


def test_a_volume_that_cannot_be_provisioned_shows_on_the_tenant(
    crds: Kube, make_tenant: Any
) -> None:
    name = make_tenant("ns-class", {"redis": {"storage": {"storageClassName": "no-such-class"}}})
    cond = degraded(crds, name, "VolumeProvisioningFailed")
    assert "volume data-redis-0 of StatefulSet redis cannot be provisioned" in cond["message"]
    assert '"no-such-class" not found' in cond["message"]


def test_a_pod_no_node_can_take_shows_on_the_tenant(crds: Kube, make_tenant: Any) -> None:
    # Within the enterprise quota (512 cores), beyond any node (256).
    big = {"requests": {"cpu": "300"}, "limits": {"cpu": "300"}}
    name = make_tenant(
        "ns-big",
        {"plan": "enterprise", "clickhouse": {"shards": 1, "replicas": 1, "resources": big}},
    )
    cond = degraded(crds, name, "Unschedulable")
    assert cond["message"].startswith("pod ch-s0-r0-0 of StatefulSet ch-s0-r0 cannot be scheduled")


# -- objects written before the CRD's rules --------------------------------------------
def _relaxed(doc: dict[str, Any]) -> dict[str, Any]:
    """The CRD without its CEL rules, as an older version installed it."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "x-kubernetes-validations"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    relaxed: dict[str, Any] = strip(copy.deepcopy(doc))
    return relaxed


@pytest.fixture
def legacy(crds: Kube) -> Iterator[Any]:
    """Create objects under the relaxed CRDs; the real ones are back before the test goes on."""
    paths = sorted((REPO / "crds").glob("*.yaml"))

    def create(*objs: dict[str, Any], patch: tuple[str, str, str] | None = None) -> None:
        """Create ``objs`` and apply ``patch`` (kind, name, merge patch) meanwhile."""
        relaxed = [_relaxed(yaml.safe_load(p.read_text())) for p in paths]
        try:
            for doc in relaxed:
                crds.run(
                    "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps(doc)
                )
            for obj in objs:
                text = json.dumps(obj)

                def created(text: str = text) -> bool:
                    return crds.try_run("create", "-f", "-", stdin=text).code == 0

                eventually(
                    created,
                    timeout=SOON,
                    what=f"{obj['metadata']['name']} created under the relaxed CRD",
                )
            if patch is not None:
                kind, name, body = patch

                def patched() -> bool:
                    args = ("patch", kind, name, "--type=merge", "-p", body)
                    return crds.try_run(*args).code == 0

                eventually(patched, timeout=SOON, what=f"{name} patched under the relaxed CRD")
        finally:
            restore()

    def restore() -> None:
        for p in paths:
            crds.run("apply", "--server-side", "--force-conflicts", "-f", str(p))

    yield create
    restore()


def test_legacy_tenants_the_models_refuse_are_refused_naming_the_field(
    crds: Kube, operator_process: Any, legacy: Any
) -> None:
    """The issue's example: cpu 1e300 (and a setting that moves the data directory)."""
    absurd = {"clickhouse": {"resources": {"requests": {"cpu": "1e300"}}}}
    path = {"clickhouse": {"settings": {"path": "/tmp/elsewhere/"}}}
    suffix = secrets.token_hex(2)
    names = [f"ns-legacy-cpu-{suffix}", f"ns-legacy-path-{suffix}"]
    objs = [
        {"apiVersion": "tenantry.io/v1alpha1", "kind": "Tenant", "metadata": {"name": n}, "spec": s}
        for n, s in zip(names, (absurd, path), strict=True)
    ]
    try:
        legacy(*objs)
        cpu = degraded(crds, names[0], "InvalidSpec")
        assert "spec.clickhouse.resources.requests.cpu" in cpu["message"]
        assert "without sign or exponent" in cpu["message"]
        setting = degraded(crds, names[1], "InvalidSpec")
        assert "setting path cannot be set" in setting["message"]
        for n in names:
            assert status(crds, n)["phase"] == "Refused"
            assert crds.get_or_none("namespace", f"tenant-{n}") is None

            def event(n: str = n) -> list[str]:
                return warned(crds, n, "InvalidSpec")

            eventually(event, timeout=SOON, what="event")
    finally:
        for n in names:
            crds.try_run("delete", "tenant", n, "--wait=false")


def test_a_legacy_dashboard_at_the_calendar_edge_gets_a_condition_not_a_crash_loop(
    crds: Kube, make_tenant: Any, legacy: Any
) -> None:
    tenant = make_tenant("ns-dash", {})
    wait_phase(crds, tenant, "Ready", timeout=120)
    name = f"{tenant}-edge"
    dashboard = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Dashboard",
        "metadata": {"name": name},
        "spec": {
            "tenantRef": {"name": tenant},
            "title": "Edge",
            "timeRange": {"from": "0001-01-01T00:00:00+01:00", "to": "now"},
            "panels": [
                {
                    "id": "a",
                    "title": "A",
                    "sql": "SELECT count() FROM events WHERE timestamp >= {from:DateTime}",
                }
            ],
        },
    }
    try:
        legacy(dashboard)

        def ready_condition() -> dict[str, Any] | None:
            obj = crds.get("dashboard", name)
            for c in (obj.get("status") or {}).get("conditions") or []:
                if c["type"] == "Ready" and c["reason"] == "InvalidSpec":
                    return dict(c)
            return None

        cond = eventually(ready_condition, timeout=SOON, what="Ready=False InvalidSpec")
        assert cond is not None
        assert cond["status"] == "False"
        assert cond["message"].startswith("spec.timeRange.from:")
        assert "out of range" in cond["message"]
        selector = f"involvedObject.kind=Dashboard,involvedObject.name={name}"
        eventually(
            lambda: any(
                e["reason"] == "InvalidSpec"
                for e in crds.get("events", "-A", "--field-selector", selector)["items"]
            ),
            timeout=SOON,
            what="Warning event on the Dashboard",
        )
    finally:
        crds.try_run("delete", "dashboard", name, "--wait=false")


def test_a_running_tenant_whose_spec_turns_invalid_keeps_running_and_says_why(
    crds: Kube, make_tenant: Any, legacy: Any
) -> None:
    """Edited under an older CRD: the stack is left as it is (nothing applied), the
    Tenant says InvalidSpec, and its Dashboards say their Tenant cannot be used."""
    name = make_tenant("ns-turned", {})
    wait_phase(crds, name, "Ready", timeout=120)
    ns = f"tenant-{name}"
    before = hosts(crds, ns)["ch-s0-r0"]["metadata"]["generation"]
    board = f"{name}-board"
    dashboard = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Dashboard",
        "metadata": {"name": board},
        "spec": {
            "tenantRef": {"name": name},
            "title": "Board",
            "panels": [{"id": "a", "title": "A", "sql": "SELECT count() FROM events"}],
        },
    }
    try:
        patch = '{"spec":{"clickhouse":{"settings":{"path":"/tmp/elsewhere/"}}}}'
        legacy(patch=("tenant", name, patch))
        cond = degraded(crds, name, "InvalidSpec")
        assert "setting path cannot be set" in cond["message"]
        assert status(crds, name)["phase"] == "Degraded"
        assert condition(crds, name, "ClickHouseReady")["status"] == "True"
        assert hosts(crds, ns)["ch-s0-r0"]["metadata"]["generation"] == before
        crds.run("create", "-f", "-", stdin=json.dumps(dashboard))

        def tenant_invalid() -> dict[str, Any] | None:
            obj = crds.get("dashboard", board)
            for c in (obj.get("status") or {}).get("conditions") or []:
                if c["type"] == "Ready" and c["reason"] == "TenantInvalid":
                    return dict(c)
            return None

        invalid = eventually(tenant_invalid, timeout=SOON, what="Dashboard TenantInvalid")
        assert invalid is not None
        assert invalid["message"].startswith(f"Tenant {name} has a spec the operator refuses")
        # Fixed (the CRD is back, and accepts removing the setting): all is well again.
        crds.run(
            "patch",
            "tenant",
            name,
            "--type=json",
            "-p",
            '[{"op": "remove", "path": "/spec/clickhouse/settings/path"}]',
        )
        wait_phase(crds, name, "Ready", timeout=120)
    finally:
        crds.try_run("delete", "dashboard", board, "--wait=false")
