"""`helm install` of charts/tenantry into the real cluster, then `helm uninstall`.

Locally kwok plays the kubelet, so the chart's pods become Ready without running; the
Tenant below is reconciled by the test's own operator process (the `operator_process`
fixture). The chart's operator is scaled to zero before that Tenant exists, so that on a
real cluster (kind, TENANTRY_E2E_KUBECONFIG) two standalone operators never reconcile
the same Tenant. That the chart's RBAC suffices is checked on the API server itself:
everything the operator builds for the Tenant is server-side applied (dry run) as the
chart's ServiceAccount.

TENANTRY_E2E_HELM_VALUES names an extra values file (kind: the image and the in-cluster
PostgreSQL and Redis the control plane needs to become Ready).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from tenantry_operator import builders, normalize

from tenantry.api import GROUP, crdgen
from tests.support.helm import Helm
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.wait import eventually, kubectl_timeout, scaled

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tenantry"
RELEASE = "tenantry-e2e"
NAMESPACE = "tenantry-helm-e2e"
TENANT = "e2e-helm-chart"  # used by no other test
OPERATOR = f"{RELEASE}-operator"
CONTROLPLANE = f"{RELEASE}-controlplane"
CRDS = tuple(f"{defn.plural}.{GROUP}" for defn in crdgen.ALL)  # every CRD the chart holds
OPERATOR_SA = f"system:serviceaccount:{NAMESPACE}:{OPERATOR}"
CONTROLPLANE_SA = f"system:serviceaccount:{NAMESPACE}:{CONTROLPLANE}"

VALUES: dict[str, Any] = {
    "image": {"repository": "tenantry", "tag": "dev", "pullPolicy": "IfNotPresent"},
    "controlplane": {
        "replicas": 1,
        "database": {"url": "postgresql://tenantry@postgres:5432/tenantry"},
        "redis": {"url": "redis://redis:6379/0"},
    },
}


def _helm_owner(kube: Kube, crd: str) -> str | None:
    annotations = kube.get("crd", crd)["metadata"].get("annotations") or {}
    owner: str | None = annotations.get("meta.helm.sh/release-name")
    return owner


def _adopt_crds(kube: Kube) -> bool:
    """Let the release take over the CRDs the `crds` fixture applied (Helm's adoption).

    False when another Helm release owns them already (kind: the workflow's release);
    the chart then leaves them alone (crds.install=false).
    """
    owners = {_helm_owner(kube, crd) for crd in CRDS}
    if owners - {None, RELEASE}:
        return False
    for crd in CRDS:
        kube.run("label", "crd", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        kube.run(
            "annotate",
            "crd",
            crd,
            f"meta.helm.sh/release-name={RELEASE}",
            f"meta.helm.sh/release-namespace={NAMESPACE}",
            "--overwrite",
        )
    return True


def _values(*, crds_install: bool) -> str:
    values: dict[str, Any] = {**VALUES, "crds": {"install": crds_install}}
    return yaml.safe_dump(values)


@pytest.fixture(scope="module")
def release(crds: Kube) -> Iterator[Helm]:
    helm = Helm(crds)
    install_crds = _adopt_crds(crds)
    extra = os.environ.get("TENANTRY_E2E_HELM_VALUES")
    helm.notes = helm.run(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--values",
        "-",
        *(["--values", extra] if extra else []),
        "--wait",
        "--timeout",
        kubectl_timeout(180),
        stdin=_values(crds_install=install_crds),
    )
    try:
        yield helm
    finally:
        crds.try_run("delete", "tenant", TENANT, "--wait=false")
        subprocess.run(
            [
                str(helm.binary),
                "--kubeconfig",
                str(crds.kubeconfig),
                "uninstall",
                RELEASE,
                "--namespace",
                NAMESPACE,
                "--ignore-not-found",
                "--wait",
                "--timeout",
                kubectl_timeout(180),
            ],
            capture_output=True,
            timeout=scaled(300),
            check=False,
        )
        crds.try_run("delete", "namespace", NAMESPACE, "--wait=false")


def _ready_pods(kube: Kube, component: str) -> list[str]:
    pods = kube.get(
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}",
    )["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    ]


def _can(kube: Kube, user: str, *args: str) -> bool:
    res = kube.try_run("auth", "can-i", *args, f"--as={user}")
    return res.stdout.strip() == "yes"


def test_install_creates_the_objects_and_pods_become_ready(release: Helm, crds: Kube) -> None:
    status = release.run("status", RELEASE, "--namespace", NAMESPACE)
    assert "STATUS: deployed" in status
    assert f"rollout status deployment/{OPERATOR}" in release.notes
    assert f"port-forward service/{CONTROLPLANE} 8000:80" in release.notes
    for kind, name in (
        ("deployment", OPERATOR),
        ("deployment", CONTROLPLANE),
        ("serviceaccount", OPERATOR),
        ("serviceaccount", CONTROLPLANE),
        ("service", CONTROLPLANE),
        ("configmap", CONTROLPLANE),
        ("secret", f"{CONTROLPLANE}-connections"),
    ):
        assert crds.get(kind, name, "-n", NAMESPACE)["metadata"]["name"] == name
    for kind in ("clusterrole", "clusterrolebinding"):
        for name in (OPERATOR, CONTROLPLANE):
            assert crds.get(kind, name)["metadata"]["labels"]["app.kubernetes.io/instance"] == (
                RELEASE
            )
    for component in ("operator", "controlplane"):
        assert eventually(
            partial(_ready_pods, crds, component), timeout=180, what=f"{component} pod Ready"
        )
    deployment = crds.get("deployment", OPERATOR, "-n", NAMESPACE)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "tenantry:dev"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for crd in CRDS:
        annotations = crds.get("crd", crd)["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep"


def test_upgrade_rolls_out_changed_values(release: Helm, crds: Kube) -> None:
    release.run(
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--reuse-values",
        "--set",
        "operator.resyncSeconds=120",
        "--wait",
        "--timeout",
        kubectl_timeout(180),
    )
    deployment = crds.get("deployment", OPERATOR, "-n", NAMESPACE)
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["TENANTRY_RESYNC_SECONDS"] == "120"
    assert "REVISION: 2" in release.run("status", RELEASE, "--namespace", NAMESPACE)
    assert eventually(partial(_ready_pods, crds, "operator"), timeout=180, what="operator Ready")


def test_service_accounts_get_least_privilege(release: Helm, crds: Kube) -> None:
    tenant_ns = f"tenant-{TENANT}"
    allowed = [
        ("watch", "tenants.tenantry.io"),
        ("patch", "tenants.tenantry.io/status"),
        ("create", "events"),
        ("create", "namespaces"),
        ("delete", "namespaces"),
        ("watch", "statefulsets.apps", "--all-namespaces"),
        ("patch", "statefulsets.apps", "-n", tenant_ns),
        ("delete", "cronjobs.batch", "-n", tenant_ns),
        ("create", "secrets", "-n", tenant_ns),
        ("list", "pods", "--all-namespaces"),
        ("patch", "persistentvolumeclaims", "-n", tenant_ns),
    ]
    denied = [
        ("delete", "secrets", "-n", tenant_ns),
        ("patch", "secrets", "-n", tenant_ns),
        ("update", "tenants.tenantry.io"),
        ("delete", "tenants.tenantry.io"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "rolebindings.rbac.authorization.k8s.io", "-n", tenant_ns),
        ("get", "nodes"),
        ("delete", "pods", "-n", tenant_ns),
        ("delete", "persistentvolumeclaims", "-n", tenant_ns),
        ("create", "pods/exec", "-n", tenant_ns),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ]
    for check in allowed:
        assert _can(crds, OPERATOR_SA, *check), check
    for check in denied:
        assert not _can(crds, OPERATOR_SA, *check), check
    assert _can(crds, CONTROLPLANE_SA, "create", "tenants.tenantry.io")
    assert _can(crds, CONTROLPLANE_SA, "delete", "dashboards.tenantry.io")
    assert _can(crds, CONTROLPLANE_SA, "watch", "tenants.tenantry.io")  # its read mirror
    assert not _can(crds, CONTROLPLANE_SA, "list", "secrets", "--all-namespaces")
    assert not _can(crds, CONTROLPLANE_SA, "get", "secrets/redis-credentials", "-n", "default")
    assert _can(crds, CONTROLPLANE_SA, "get", "secrets/clickhouse-credentials", "-n", "default")


def test_operator_rbac_covers_what_it_builds_for_a_tenant(
    release: Helm, crds: Kube, operator_process: OperatorProcess
) -> None:
    # Only the test's operator process reconciles: scale the chart's operator away.
    crds.run("scale", "deployment", OPERATOR, "-n", NAMESPACE, "--replicas=0")
    eventually(
        partial(_ready_pods, crds, "operator"),
        accept=lambda ready: not ready,
        timeout=120,
        what="operator scaled down",
    )

    crds.apply(
        {
            "apiVersion": "tenantry.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": TENANT},
            "spec": {"plan": "starter"},
        }
    )

    def observed() -> Any:
        tenant = crds.get("tenant", TENANT)
        status = tenant.get("status") or {}
        done = status.get("observedGeneration") == tenant["metadata"]["generation"]
        return tenant if done and crds.get_or_none("namespace", f"tenant-{TENANT}") else None

    tenant = eventually(observed, timeout=180, what="tenant reconciled by the operator")
    model = normalize.tenant_model(tenant, platform_namespaces=(NAMESPACE,))
    manifests = builders.build(model)
    assert manifests
    stream = yaml.safe_dump_all([dict(m) for m in manifests])
    res = crds.try_run(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "--field-manager=tenantry-helm-e2e",
        f"--as={OPERATOR_SA}",
        "-f",
        "-",
        stdin=stream,
    )
    assert res.code == 0, res.stderr
    assert res.stdout.count("serverside-applied (server dry run)") == len(manifests)


def test_uninstall_keeps_the_crds_and_the_tenants(release: Helm, crds: Kube) -> None:
    release.run(
        "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", kubectl_timeout(120)
    )
    for kind, name in (("deployment", OPERATOR), ("deployment", CONTROLPLANE)):
        assert crds.get_or_none(kind, name, "-n", NAMESPACE) is None
    for name in (OPERATOR, CONTROLPLANE):
        assert crds.get_or_none("clusterrole", name) is None
        assert crds.get_or_none("clusterrolebinding", name) is None
    for crd in CRDS:
        conditions = crds.get("crd", crd)["status"]["conditions"]
        assert any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
    # Kept CRDs keep their objects: the Tenant outlives the release.
    assert crds.get("tenant", TENANT)["metadata"]["name"] == TENANT
