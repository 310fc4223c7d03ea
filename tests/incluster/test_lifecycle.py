"""A tenant's life after the journey, on the installed chart and real pods (the journey's
Services and helpers, tests/incluster/platform.py; Tenants applied as a platform team
does, with kubectl):

- suspend: every pod of the tenant gone, its volumes kept; resume: the pods back Running
  and Ready and the rows inserted before still in ClickHouse;
- drift: children changed or deleted by hand are put back by the operator pod;
- the operator pod killed (grace 0) once a new Tenant's namespace exists: it converges
  to Ready with the same children as one built without a crash, and no workload rolled;
- ``helm upgrade`` with changed values: the operator and control plane pods replaced and
  Ready, the tenant's pods untouched (same UIDs, no restart), its data still there;
- delete: reclaimPolicy Retain keeps the namespace, the claims and the volumes'
  directories on disk; Delete removes them.

The tests run in this order and share tests/incluster's install and this module's tenants.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from tenantry_operator.model import LABEL_COMPONENT

from tenantry import contract
from tenantry_dev.platform import CHART, CONTROLPLANE, NAMESPACE, RELEASE
from tests.incluster import platform
from tests.incluster.conftest import Platform
from tests.support.kube import Kube, tenant
from tests.support.portforward import forward
from tests.support.wait import eventually, kubectl_timeout, scaled

pytestmark = [pytest.mark.incluster, pytest.mark.timeout(900)]

ROWS = 1000
# Starter Tenants asking for less CPU for ClickHouse than the plan's 500m: the real node
# has 2 CPUs to give, for the journey's tenant, these two and the platform.
SPEC: dict[str, Any] = {
    "plan": "starter",
    "clickhouse": {"resources": {"requests": {"cpu": "200m"}}},
}
TABLE = "lifecycle_rows"


@dataclass(frozen=True)
class Stack:
    name: str
    namespace: str

    @property
    def table(self) -> str:
        return f"{contract.tenant_database(self.name)}.{TABLE}"


def _count(kube: Kube, stack: Stack) -> int:
    # names from the contract and this module, not input
    return int(platform.clickhouse(kube, stack.namespace, f"SELECT count() FROM {stack.table}"))  # noqa: S608


def _on_disk(volume: platform.Volume) -> bool:
    return volume.path is not None and volume.path.is_dir()


def _pods(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in kube.get("pods", "-n", namespace)["items"]}


def _components(pods: dict[str, dict[str, Any]]) -> Counter[str]:
    """How many pods of each component."""
    return Counter(p["metadata"]["labels"].get(LABEL_COMPONENT, "") for p in pods.values())


def _identity(pods: dict[str, dict[str, Any]]) -> dict[str, tuple[str, list[int]]]:
    """Each pod's UID and its containers' restart counts."""
    return {
        name: (
            p["metadata"]["uid"],
            sorted(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", [])),
        )
        for name, p in pods.items()
    }


def _wait_all_ready(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    pods = eventually(
        lambda: _all_ready(kube, namespace),
        timeout=300,
        what=f"every pod of {namespace} Running and Ready",
    )
    assert pods is not None
    return pods


def _rolled_out(kube: Kube, namespace: str) -> bool:
    """Every Deployment and StatefulSet has seen its spec and has exactly its replicas,
    all updated and Ready: no rollout under way (whose old pods, still listed and Ready
    while they terminate, would be counted as the tenant's)."""
    for o in kube.get("deployments,statefulsets", "-n", namespace)["items"]:
        status, want = o.get("status", {}), o["spec"].get("replicas", 1)
        if status.get("observedGeneration") != o["metadata"]["generation"]:
            return False
        counts = (status.get(k, 0) for k in ("replicas", "updatedReplicas", "readyReplicas"))
        if any(n != want for n in counts):
            return False
    return True


def _all_ready(kube: Kube, namespace: str) -> dict[str, dict[str, Any]] | None:
    """The namespace's pods once every one is Ready, none is terminating and every
    workload is rolled out; None before."""
    pods = _pods(kube, namespace)
    if any(p["metadata"].get("deletionTimestamp") for p in pods.values()):
        return None
    ready = {p["metadata"]["name"] for p in platform.ready_pods(kube, namespace)}
    settled = pods and ready == set(pods) and _rolled_out(kube, namespace)
    return pods if settled else None


@pytest.fixture(scope="module")
def kept(installed: Platform) -> Stack:
    """A starter Tenant (reclaimPolicy Retain, the default) Ready, with ROWS rows in a
    MergeTree table of its database."""
    kube = installed.kube
    name = "lifecycle"
    kube.apply(tenant(name, SPEC))
    platform.wait_tenant(kube, name)
    stack = Stack(name, contract.tenant_namespace(name))
    platform.clickhouse(
        kube,
        stack.namespace,
        f"CREATE TABLE {stack.table} (n UInt64) ENGINE = MergeTree ORDER BY n",
    )
    platform.clickhouse(
        kube,
        stack.namespace,
        f"INSERT INTO {stack.table} SELECT number FROM numbers({ROWS})",  # noqa: S608
    )
    assert _count(kube, stack) == ROWS
    return stack


def test_suspend_removes_every_pod_and_resume_brings_them_back_with_the_data(
    installed: Platform, kept: Stack
) -> None:
    kube = installed.kube
    before = platform.volumes(kube, kept.namespace)
    assert {v.claim for v in before} >= {"data-ch-s0-r0-0", "data-redis-0"}, before

    started = time.monotonic()
    kube.run("patch", "tenant", kept.name, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    platform.wait_tenant(kube, kept.name, "Suspended")
    eventually(
        lambda: _pods(kube, kept.namespace),
        accept=lambda pods: not pods,
        timeout=300,
        what=f"no pod left in {kept.namespace}",
    )
    suspended = time.monotonic() - started
    for kind in ("statefulsets", "deployments"):
        for obj in kube.get(kind, "-n", kept.namespace)["items"]:
            assert obj["spec"]["replicas"] == 0, (kind, obj["metadata"]["name"])
    assert platform.volumes(kube, kept.namespace) == before  # the same volumes, still bound
    for volume in before:
        if installed.volumes_dir is not None:
            assert _on_disk(volume), volume

    started = time.monotonic()
    kube.run("patch", "tenant", kept.name, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    platform.wait_tenant(kube, kept.name)
    pods = _wait_all_ready(kube, kept.namespace)
    resumed = time.monotonic() - started
    assert {"clickhouse", "redis", "ingestion"} <= set(_components(pods)), pods
    assert _count(kube, kept) == ROWS
    print(f"\nsuspend: no pod left after {suspended:.1f} s; resume: all Ready in {resumed:.1f} s")


def _drifted(kube: Kube, namespace: str) -> dict[str, Any]:
    """What the test changes by hand, as the operator wants it."""
    children = platform.children(kube, namespace)
    deployment = children[("Deployment", "ingestion")]
    configmaps = sorted(n for k, n in children if k == "ConfigMap" and n != "kube-root-ca.crt")
    policies = sorted(n for k, n in children if k == "NetworkPolicy")
    assert configmaps, sorted(children)
    assert policies, sorted(children)
    return {
        "replicas": deployment["spec"]["replicas"],
        "env": deployment["spec"]["template"]["spec"]["containers"][0].get("env"),
        "configmap": (configmaps[0], children[("ConfigMap", configmaps[0])]["data"]),
        "policy": (policies[0], children[("NetworkPolicy", policies[0])]["spec"]),
    }


def test_drift_by_hand_is_put_back_by_the_operator_pod(installed: Platform, kept: Stack) -> None:
    kube = installed.kube
    ns = kept.namespace
    wanted = _drifted(kube, ns)
    configmap, _ = wanted["configmap"]
    policy, _ = wanted["policy"]

    started = time.monotonic()
    kube.run("scale", "deployment/ingestion", "-n", ns, f"--replicas={wanted['replicas'] + 2}")
    literal = next(e["name"] for e in wanted["env"] if "value" in e)
    kube.run("set", "env", "deployment/ingestion", "-n", ns, f"{literal}=changed-by-hand")
    kube.run("delete", "configmap", configmap, "-n", ns)
    kube.run("delete", "networkpolicy", policy, "-n", ns)

    def current() -> dict[str, Any] | None:
        try:
            return _drifted(kube, ns)
        except KeyError:
            return None

    eventually(current, accept=lambda now: now == wanted, timeout=120, what="the drift undone")
    print(f"\ndrift undone in {time.monotonic() - started:.1f} s")
    platform.wait_tenant(kube, kept.name)
    _wait_all_ready(kube, ns)


@pytest.fixture(scope="module")
def crashed(installed: Platform, kept: Stack) -> Stack:
    """A Tenant (reclaimPolicy Delete) whose build the operator pod was killed in: as
    soon as its namespace exists, the pod is deleted with grace 0. Returned once the
    new operator pod is Ready."""
    kube = installed.kube
    name = "crashed"
    stack = Stack(name, contract.tenant_namespace(name))
    (old,) = platform.release_pods(kube, "operator")
    kube.apply(tenant(name, {**SPEC, "reclaimPolicy": "Delete"}))
    eventually(
        lambda: kube.get_or_none("namespace", stack.namespace),
        timeout=120,
        interval=0.05,
        what=f"namespace {stack.namespace}",
    )
    kube.run(
        "delete", "pod", old["metadata"]["name"], "-n", NAMESPACE,
        "--grace-period=0", "--force",
    )  # fmt: skip
    built = sorted(f"{k}/{n}" for k, n in platform.children(kube, stack.namespace))
    status = platform.tenant_status(kube, name)
    print(f"\noperator killed; right after: Tenant phase {status.get('phase')!r}, children {built}")
    assert status.get("phase") != "Ready", status

    def replaced() -> list[dict[str, Any]]:
        return [
            p
            for p in platform.release_pods(kube, "operator")
            if p["metadata"]["uid"] != old["metadata"]["uid"]
        ]

    eventually(
        replaced,
        accept=lambda pods: pods and all(platform.is_ready(p) for p in pods),
        timeout=300,
        what="a new operator pod Ready",
    )
    return stack


def test_the_operator_pod_killed_mid_build_converges_without_duplicates(
    installed: Platform, kept: Stack, crashed: Stack
) -> None:
    kube = installed.kube
    platform.wait_tenant(kube, crashed.name)
    pods = _wait_all_ready(kube, crashed.namespace)
    # The same children, by kind and name, as the Tenant built without a crash.
    assert sorted(platform.children(kube, crashed.namespace)) == sorted(
        platform.children(kube, kept.namespace)
    )
    assert _components(pods) == _components(_pods(kube, kept.namespace))
    # Nothing built twice over: each workload at its first revision.
    for rs in kube.get("replicasets", "-n", crashed.namespace)["items"]:
        owner = rs["metadata"]["ownerReferences"][0]["name"]
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1", owner
    for sts in kube.get("statefulsets", "-n", crashed.namespace)["items"]:
        assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"], sts["status"]
        assert sts["metadata"]["generation"] == 1, sts["metadata"]["name"]
    revisions = kube.get("controllerrevisions", "-n", crashed.namespace)["items"]
    assert len(revisions) == len(kube.get("statefulsets", "-n", crashed.namespace)["items"])


UPGRADE = {
    "operator": {"resyncSeconds": 240},
    "controlplane": {"config": {"maxBodyBytes": 2097152}},
}


def test_helm_upgrade_keeps_tenants_running(installed: Platform, kept: Stack) -> None:
    kube = installed.kube
    ns = kept.namespace
    pods = _wait_all_ready(kube, ns)
    workloads = {
        (o["kind"], o["metadata"]["name"]): o["metadata"]["generation"]
        for o in kube.get("statefulsets,deployments", "-n", ns)["items"]
    }
    releases = {
        c: {p["metadata"]["uid"] for p in platform.release_pods(kube, c)}
        for c in ("operator", "controlplane")
    }
    before = yaml.safe_load(installed.helm.run("status", RELEASE, "-n", NAMESPACE, "-o", "yaml"))
    revision = int(before["version"])

    started = time.monotonic()
    installed.helm.run(
        "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--reuse-values", "--values", "-", "--wait", "--timeout", kubectl_timeout(300),
        stdin=yaml.safe_dump(UPGRADE),
    )  # fmt: skip
    for component, uids in releases.items():
        platform.wait_rollout(kube, NAMESPACE, f"deployment/{RELEASE}-{component}")
        now = platform.release_pods(kube, component)
        assert now, component
        assert not {p["metadata"]["uid"] for p in now} & uids, component  # replaced
        assert all(platform.is_ready(p) for p in now), component
    upgraded = time.monotonic() - started
    status = yaml.safe_load(installed.helm.run("status", RELEASE, "-n", NAMESPACE, "-o", "yaml"))
    assert int(status["version"]) == revision + 1
    assert status["info"]["status"] == "deployed"

    # The new operator pod reconciles the tenant (a NetworkPolicy deleted by hand comes
    # back) and changes none of its workloads.
    policy = next(n for k, n in platform.children(kube, ns) if k == "NetworkPolicy")
    kube.run("delete", "networkpolicy", policy, "-n", ns)
    eventually(
        lambda: kube.get_or_none("networkpolicy", policy, "-n", ns),
        timeout=120,
        what=f"NetworkPolicy {policy} put back by the new operator pod",
    )
    platform.wait_tenant(kube, kept.name)
    assert {
        (o["kind"], o["metadata"]["name"]): o["metadata"]["generation"]
        for o in kube.get("statefulsets,deployments", "-n", ns)["items"]
    } == workloads
    assert _identity(_pods(kube, ns)) == _identity(pods)
    assert _all_ready(kube, ns)
    assert _count(kube, kept) == ROWS
    with forward(kube, NAMESPACE, CONTROLPLANE, 80) as api:
        ready = httpx.get(f"{api}/readyz", timeout=scaled(30))
        assert ready.status_code == 200, ready.text
    print(f"\nhelm upgrade: operator and control plane replaced and Ready in {upgraded:.1f} s")


def test_delete_with_retain_keeps_the_volumes_and_with_delete_removes_them(
    installed: Platform, kept: Stack, crashed: Stack
) -> None:
    kube = installed.kube
    retained = platform.volumes(kube, kept.namespace)
    deleted = platform.volumes(kube, crashed.namespace)
    assert retained
    assert deleted
    if installed.volumes_dir is not None:
        for volume in (*retained, *deleted):
            assert _on_disk(volume), volume
            assert volume.path is not None
            assert volume.path.parent == installed.volumes_dir
        # ClickHouse wrote its data there (the stand-in's data path is on the volume).
        assert any(any(v.path.iterdir()) for v in retained if v.path), retained

    for stack in (kept, crashed):
        kube.run("delete", "tenant", stack.name, "--wait=false")
    for stack in (kept, crashed):
        kube.run(
            "wait",
            "--for=delete",
            f"tenant/{stack.name}",
            f"--timeout={kubectl_timeout(300)}",
            timeout=400,
        )

    # Retain: the namespace (labelled retained), its claims and their directories stay.
    namespace = kube.get("namespace", kept.namespace)
    assert namespace["metadata"]["labels"].get("tenantry.io/retained") == "true"
    assert platform.volumes(kube, kept.namespace) == retained
    for volume in retained:
        assert kube.get("pv", volume.pv)["status"]["phase"] == "Bound"
        if installed.volumes_dir is not None:
            assert _on_disk(volume), volume

    # Delete: the namespace, the volumes and, on the node, their directories go.
    kube.run(
        "wait",
        "--for=delete",
        f"namespace/{crashed.namespace}",
        f"--timeout={kubectl_timeout(300)}",
        timeout=400,
    )
    for volume in deleted:
        _gone(f"PersistentVolume {volume.pv}", functools.partial(kube.get_or_none, "pv", volume.pv))
        if installed.volumes_dir is not None:
            assert volume.path is not None
            _gone(str(volume.path), volume.path.exists)


def _gone(what: str, check: Callable[[], object]) -> None:
    eventually(check, accept=lambda found: not found, timeout=120, what=f"{what} gone")
