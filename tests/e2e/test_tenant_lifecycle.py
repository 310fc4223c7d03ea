"""A Tenant becomes its stack and stays that way: the operator against the real API server.

kwok plays the kubelet (pods become Ready without containers) and the local provisioner
binds volumes; everything else (controllers, scheduler, garbage collector, admission) is
the real Kubernetes.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tenantry_operator.kube import FIELD_MANAGER
from tenantry_operator.model import ANNOTATION_APPLIED_HASH

from tests.support.kube import Kube
from tests.support.wait import eventually, kubectl_timeout

HASH = "tenantry.io/config-hash"
# A deleted or edited child is restored by the watch-driven reconcile well before any
# timer of the operator under test fires (resync 60 s, busy recheck 30 s).
RESTORED_WITHIN = 20


def status(kube: Kube, name: str) -> dict[str, Any]:
    obj = kube.get_or_none("tenant", name) or {}
    return dict(obj.get("status") or {})


def condition(kube: Kube, name: str, ctype: str) -> dict[str, Any]:
    for c in status(kube, name).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    return {}


def wait_phase(kube: Kube, name: str, phase: str, timeout: float = 180) -> dict[str, Any]:
    """The Tenant's status once it is ``phase`` for its current generation (a timeout
    shows the last status seen: phase, conditions and their messages)."""

    def check() -> tuple[int, dict[str, Any]]:
        obj = kube.get("tenant", name)
        return int(obj["metadata"]["generation"]), dict(obj.get("status") or {})

    def reached(seen: tuple[int, dict[str, Any]]) -> bool:
        generation, st = seen
        return st.get("observedGeneration") == generation and st.get("phase") == phase

    try:
        _, st = eventually(check, accept=reached, timeout=timeout, what=f"{name} {phase}")
    except AssertionError as failure:
        # What the cluster itself says, beside the operator's status: a failure on a
        # loaded machine should say whether the workloads or the operator lagged.
        seen = kube.try_run(
            "get", "statefulsets,deployments,pods,pvc", "-n", f"tenant-{name}", "-o", "wide"
        )
        nodes = kube.try_run("get", "nodes", "-o", "wide")
        raise AssertionError(f"{failure}\n{seen.stdout}{seen.stderr}\n{nodes.stdout}") from None
    return st


def hosts(kube: Kube, ns: str) -> dict[str, dict[str, Any]]:
    items = kube.get("statefulsets", "-n", ns, "-l", "tenantry.io/shard")["items"]
    return {s["metadata"]["name"]: s for s in items}


def host_hash(sts: dict[str, Any]) -> str:
    return str(sts["spec"]["template"]["metadata"]["annotations"][HASH])


def events(kube: Kube, name: str) -> list[dict[str, Any]]:
    """Events of the current Tenant of that name (not of an earlier one)."""
    uid = kube.get("tenant", name)["metadata"]["uid"]
    selector = f"involvedObject.kind=Tenant,involvedObject.name={name},involvedObject.uid={uid}"
    items = kube.get("events", "-A", "--field-selector", selector)["items"]
    return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def test_create_becomes_ready_with_an_isolated_stack(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-create", {"plan": "growth", "clickhouse": {"shards": 2}})
    st = wait_phase(crds, name, "Ready")
    assert st["hosts"] == "4/4"
    assert (st["shards"], st["replicas"]) == (2, 2)
    ns = f"tenant-{name}"
    assert st["namespace"] == ns
    namespace = crds.get("namespace", ns)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert crds.get("resourcequota", "quota", "-n", ns)["spec"]["hard"]
    policies = {p["metadata"]["name"] for p in crds.get("networkpolicies", "-n", ns)["items"]}
    assert {"default-deny", "allow-same-namespace"} <= policies
    assert len(hosts(crds, ns)) == 4
    assert crds.get("statefulset", "keeper", "-n", ns)["spec"]["replicas"] == 3
    # Generated credentials exist, and never show up in status or events.
    secret = crds.get("secret", "clickhouse-credentials", "-n", ns)
    passwords = [base64.b64decode(v).decode() for v in secret["data"].values()]
    assert len(passwords) == 3
    assert all(len(p) >= 32 for p in passwords)
    visible = json.dumps(crds.get("tenant", name)) + json.dumps(events(crds, name))
    assert not any(p in visible for p in passwords)
    reasons = {e["reason"] for e in events(crds, name)}
    assert {"NamespaceCreated", "Created", "SecretGenerated"} <= reasons


def test_deleted_or_edited_children_are_restored(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-drift", {})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    crds.run("delete", "service", "clickhouse", "-n", ns)
    crds.run("delete", "networkpolicy", "default-deny", "-n", ns)
    crds.run("scale", "statefulset", "ch-s0-r0", "-n", ns, "--replicas=0")
    start = time.monotonic()
    eventually(
        lambda: crds.get_or_none("service", "clickhouse", "-n", ns),
        timeout=RESTORED_WITHIN,
        what="Service restored",
    )
    eventually(
        lambda: crds.get_or_none("networkpolicy", "default-deny", "-n", ns),
        timeout=RESTORED_WITHIN,
        what="NetworkPolicy restored",
    )
    eventually(
        lambda: crds.get("statefulset", "ch-s0-r0", "-n", ns)["spec"]["replicas"],
        accept=lambda replicas: replicas == 1,
        timeout=RESTORED_WITHIN,
        what="replicas restored",
    )
    # The watches woke the worker: restoring all three well within the operator's
    # timers says no timer did it. Not scaled: it is a property of the operator.
    assert time.monotonic() - start < RESTORED_WITHIN


def test_scale_out_adds_hosts_without_restarting_others(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-scale", {"clickhouse": {"shards": 1, "replicas": 2}})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    before = hosts(crds, ns)
    cluster_before = crds.get("configmap", "clickhouse-config", "-n", ns)["data"]
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"clickhouse":{"shards":2}}}')
    st = wait_phase(crds, name, "Ready")
    assert st["hosts"] == "4/4"
    after = hosts(crds, ns)
    assert set(after) == {"ch-s0-r0", "ch-s0-r1", "ch-s1-r0", "ch-s1-r1"}
    for host in before:  # same template, same generation: not restarted
        assert host_hash(after[host]) == host_hash(before[host])
        assert after[host]["metadata"]["generation"] == before[host]["metadata"]["generation"]
    cluster_after = crds.get("configmap", "clickhouse-config", "-n", ns)["data"]
    assert cluster_after != cluster_before
    assert "ch-s1-r0" in json.dumps(cluster_after)


def test_scale_in_is_refused_unless_allowed(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-shrink", {"clickhouse": {"shards": 2}})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"clickhouse":{"shards":1}}}')
    st = wait_phase(crds, name, "Degraded")
    degraded = condition(crds, name, "Degraded")
    assert degraded["reason"] == "ScaleInRefused"
    assert "AllowDataLoss" in degraded["message"]
    assert len(hosts(crds, ns)) == 2
    assert st["shards"] == 2
    assert "ScaleInRefused" in {e["reason"] for e in events(crds, name)}
    crds.run(
        "patch",
        "tenant",
        name,
        "--type=merge",
        "-p",
        '{"spec":{"clickhouse":{"scaleInPolicy":"AllowDataLoss"}}}',
    )
    st = wait_phase(crds, name, "Ready")
    assert st["shards"] == 1
    eventually(
        lambda: set(hosts(crds, ns)),
        accept=lambda names: names == {"ch-s0-r0"},
        timeout=120,
        what="host removed",
    )


def test_version_change_rolls_one_host_at_a_time(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-roll", {"clickhouse": {"shards": 3, "replicas": 2, "version": "25.3"}})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    old = {n: host_hash(s) for n, s in hosts(crds, ns).items()}
    crds.run(
        "patch", "tenant", name, "--type=merge", "-p", '{"spec":{"clickhouse":{"version":"25.8"}}}'
    )
    worst_per_shard = 0
    worst_shards = 0

    def rolled_out() -> dict[str, int]:
        """Hosts still changing per shard, recording the worst seen; {} once all rolled."""
        nonlocal worst_per_shard, worst_shards
        now = hosts(crds, ns)
        changing: dict[str, int] = {}
        for n, s in now.items():
            st = s.get("status") or {}
            rolled = host_hash(s) != old[n]
            done = (
                st.get("readyReplicas") == 1
                and st.get("updatedReplicas") == 1
                and st.get("currentRevision") == st.get("updateRevision")
            )
            if rolled and not done:
                shard = n.split("-")[1]
                changing[shard] = changing.get(shard, 0) + 1
        worst_per_shard = max([worst_per_shard, *changing.values()])
        worst_shards = max(worst_shards, len(changing))
        if not all(host_hash(s) != old[n] for n, s in now.items()):
            changing["not started"] = 1
        return changing

    eventually(
        rolled_out,
        accept=lambda changing: not changing,
        timeout=240,
        interval=0.05,
        what="every host rolled",
    )
    st = wait_phase(crds, name, "Ready")
    assert all(host_hash(s) != old[n] for n, s in hosts(crds, ns).items())
    assert worst_per_shard <= 1, "two hosts of one shard were down at once"
    assert worst_shards <= 2, "more shards in flight than the operator allows"
    rolls = [e["message"] for e in events(crds, name) if e["reason"] == "RollingUpdate"]
    assert len(rolls) == 6
    images = {
        c["image"]
        for s in hosts(crds, ns).values()
        for c in s["spec"]["template"]["spec"]["containers"]
    }
    assert any(i.endswith(":25.8") for i in images)
    assert st["hosts"] == "6/6"


def test_suspend_scales_to_zero_and_resume_restores(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-suspend", {"clickhouse": {"replicas": 2}})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    pvcs = {p["metadata"]["name"] for p in crds.get("pvc", "-n", ns)["items"]}
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_phase(crds, name, "Suspended")
    eventually(
        lambda: crds.get("pods", "-n", ns)["items"],
        accept=lambda pods: not pods,
        timeout=120,
        what="all pods gone",
    )
    for kind in ("statefulsets", "deployments"):
        assert all(o["spec"]["replicas"] == 0 for o in crds.get(kind, "-n", ns)["items"])
    assert {p["metadata"]["name"] for p in crds.get("pvc", "-n", ns)["items"]} == pvcs
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    st = wait_phase(crds, name, "Ready")
    assert st["hosts"] == "2/2"


def test_resume_gives_an_autoscaled_ingestion_back_its_pods(crds: Kube, make_tenant: Any) -> None:
    """Suspend pins the ingestion Deployment at 0 replicas; on resume the HPA owns the
    count and the desired Deployment leaves ``spec.replicas`` out. The operator must
    give the field up (apply again), or the Deployment stays at 0, where an HPA never
    scales, and the tenant reads Ready with no ingestion pod."""
    name = make_tenant(
        "lc-hpa", {"ingestion": {"autoscaling": {"enabled": True, "minReplicas": 2}}}
    )
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_phase(crds, name, "Suspended")
    assert crds.get("deployment", "ingestion", "-n", ns)["spec"]["replicas"] == 0
    crds.run("patch", "tenant", name, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_phase(crds, name, "Ready")
    eventually(
        lambda: crds.get("deployment", "ingestion", "-n", ns),
        accept=lambda d: (
            d["spec"]["replicas"] >= 1 and (d.get("status") or {}).get("readyReplicas", 0) >= 1
        ),
        timeout=120,
        what="ingestion pods back after resume",
    )
    managers = {
        m["manager"]
        for m in crds.get("deployment", "ingestion", "-n", ns, "--show-managed-fields")["metadata"][
            "managedFields"
        ]
        if "f:replicas" in json.dumps(m.get("fieldsV1", {}).get("f:spec", {}))
    }
    assert FIELD_MANAGER not in managers, managers


def test_what_an_older_operator_applied_and_this_one_does_not_is_removed(
    crds: Kube, make_tenant: Any
) -> None:
    """An object applied by an earlier version of the operator (or from an earlier
    spec) with a field, an env var, a container and an annotation the current desired
    object lacks: one reconcile removes all four, and then nothing more is written."""
    name = make_tenant("lc-prune-fields", {})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    live = crds.get("deployment", "ingestion", "-n", ns)
    meta = live["metadata"]
    older = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": meta["name"],
            "namespace": ns,
            "labels": meta["labels"],
            "annotations": {
                **meta["annotations"],
                ANNOTATION_APPLIED_HASH: "older",
                "legacy": "yes",
            },
            "ownerReferences": meta.get("ownerReferences", []),
        },
        "spec": json.loads(json.dumps(live["spec"])),
    }
    spec = older["spec"]
    spec["progressDeadlineSeconds"] = 333
    pod = spec["template"]["spec"]
    pod["containers"][0].setdefault("env", []).append({"name": "LEGACY", "value": "1"})
    pod["containers"].append({**pod["containers"][0], "name": "legacy-sidecar", "ports": []})
    crds.run(
        "apply",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "--force-conflicts",
        "-f",
        "-",
        stdin=json.dumps(older),
    )

    def leftovers(dep: dict[str, Any]) -> list[str]:
        pod = dep["spec"]["template"]["spec"]
        env = {e["name"] for c in pod["containers"] for e in c.get("env") or []}
        found = []
        if dep["spec"].get("progressDeadlineSeconds") == 333:
            found.append("field")
        if "LEGACY" in env:
            found.append("env var")
        if any(c["name"] == "legacy-sidecar" for c in pod["containers"]):
            found.append("container")
        if "legacy" in (dep["metadata"].get("annotations") or {}):
            found.append("annotation")
        return found

    eventually(
        lambda: crds.get("deployment", "ingestion", "-n", ns),
        accept=lambda d: (
            not leftovers(d)
            and d["metadata"]["annotations"].get(ANNOTATION_APPLIED_HASH) not in (None, "older")
        ),
        timeout=RESTORED_WITHIN,
        what="the older operator's fields removed",
    )

    def ours(dep: dict[str, Any]) -> tuple[Any, ...]:
        """The spec's generation and our field manager's last apply: what a write of
        ours would move (resourceVersion also moves with the rollout's status)."""
        applied = [
            m.get("time")
            for m in dep["metadata"]["managedFields"]
            if m["manager"] == FIELD_MANAGER and m["operation"] == "Apply"
        ]
        return dep["metadata"]["generation"], applied

    before = ours(crds.get("deployment", "ingestion", "-n", ns, "--show-managed-fields"))
    assert before[1], "the operator's apply is not in managedFields"
    # Then nothing more: wake the worker with a change it must repair (a deleted
    # Service), and once it has, the Deployment it left alone is as it was.
    crds.run("delete", "service", "ingestion", "-n", ns)
    eventually(
        lambda: crds.get_or_none("service", "ingestion", "-n", ns),
        timeout=RESTORED_WITHIN,
        what="Service restored",
    )
    after = ours(crds.get("deployment", "ingestion", "-n", ns, "--show-managed-fields"))
    assert after == before, "an up-to-date object was written again"


def test_delete_with_retain_keeps_namespace_and_volumes(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-retain", {})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    pvcs = {p["metadata"]["name"] for p in crds.get("pvc", "-n", ns)["items"]}
    assert pvcs
    crds.run("delete", "tenant", name, f"--timeout={kubectl_timeout(120)}")
    eventually(
        lambda: crds.get("statefulsets", "-n", ns)["items"],
        accept=lambda workloads: not workloads,
        timeout=120,
        what="workloads garbage-collected",
    )
    assert crds.get("namespace", ns)["metadata"]["labels"]["tenantry.io/retained"] == "true"
    assert {p["metadata"]["name"] for p in crds.get("pvc", "-n", ns)["items"]} == pvcs
    assert crds.get_or_none("secret", "clickhouse-credentials", "-n", ns) is not None


def _delete_and_wait_for_the_namespace(crds: Kube, name: str) -> None:
    crds.run("delete", "tenant", name, f"--timeout={kubectl_timeout(120)}")
    eventually(
        lambda: crds.get_or_none("namespace", f"tenant-{name}"),
        accept=lambda namespace: namespace is None,
        timeout=180,
        what="namespace deleted",
    )


def test_delete_with_delete_policy_and_delete_with_tenant_removes_everything_and_the_bucket(
    crds: Kube, make_tenant: Any, s3_server: Any
) -> None:
    from tenantry_operator.s3 import Buckets, S3Config

    buckets = Buckets(
        S3Config(s3_server.endpoint, s3_server.access_key_id, s3_server.secret_access_key)
    )
    name = make_tenant(
        "lc-delete",
        {
            "reclaimPolicy": "Delete",
            "backup": {"bucket": "lc-delete-backups", "deleteWithTenant": True},
        },
    )
    wait_phase(crds, name, "Ready")
    import asyncio

    assert asyncio.run(buckets.exists("lc-delete-backups"))
    assert crds.get_or_none("secret", "backup-s3-credentials", "-n", f"tenant-{name}")
    assert crds.get("cronjob", "backup", "-n", f"tenant-{name}")["spec"]["schedule"]
    _delete_and_wait_for_the_namespace(crds, name)
    assert not asyncio.run(buckets.exists("lc-delete-backups"))


def test_delete_with_delete_policy_keeps_the_backups(
    crds: Kube, make_tenant: Any, s3_server: Any
) -> None:
    """Backups survive a deleted Tenant (unless deleteWithTenant), so it can be restored."""
    bucket = "lc-keep-backups"
    name = make_tenant("lc-keep", {"reclaimPolicy": "Delete", "backup": {"bucket": bucket}})
    wait_phase(crds, name, "Ready")
    raw = s3_server.client()
    key = f"{name}/20261206T031500.123Z/manifest.json"
    raw.put_object(Bucket=bucket, Key=key, Body=b"{}")
    _delete_and_wait_for_the_namespace(crds, name)
    assert raw.get_object(Bucket=bucket, Key=key)["Body"].read() == b"{}"
    kept = crds.get("events", "-A", "--field-selector", "reason=BackupsKept")["items"]
    assert any(
        e["involvedObject"]["name"] == name
        and e["message"]
        == f"kept the backups of {name} in bucket {bucket} (spec.backup.deleteWithTenant is false)"
        for e in kept
    )


def test_storage_growth_expands_volumes_in_place(crds: Kube, make_tenant: Any) -> None:
    name = make_tenant("lc-grow", {"clickhouse": {"storage": {"size": "20Gi"}}})
    wait_phase(crds, name, "Ready")
    ns = f"tenant-{name}"
    pod_uid = crds.get("pod", "ch-s0-r0-0", "-n", ns)["metadata"]["uid"]
    crds.run(
        "patch",
        "tenant",
        name,
        "--type=merge",
        "-p",
        '{"spec":{"clickhouse":{"storage":{"size":"30Gi"}}}}',
    )
    wait_phase(crds, name, "Ready")
    pvc = crds.get("pvc", "data-ch-s0-r0-0", "-n", ns)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "30Gi"
    sts = crds.get("statefulset", "ch-s0-r0", "-n", ns)
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "30Gi"
    # The StatefulSet object was replaced, its pod kept running.
    assert crds.get("pod", "ch-s0-r0-0", "-n", ns)["metadata"]["uid"] == pod_uid
    assert condition(crds, name, "Degraded")["status"] == "False"
