"""Checks that hold for every object of every fixture tenant: ownership, labels,
hardened pods, resources, probes, and no password anywhere in a manifest."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from tenantry_operator import builders
from tenantry_operator import model as m
from tenantry_operator.builders import clickhouse, ingestion, keeper, redis

from tests.unit.operator import fixtures

Obj = dict[str, Any]
COMPONENTS = {
    "namespace",
    "network",
    "rbac",
    "keeper",
    "clickhouse",
    "redis",
    "ingestion",
    "backup",
}
SECRETISH = re.compile(r"PASSWORD|SECRET|AUTH|ACCESS_KEY", re.IGNORECASE)


def _all() -> list[tuple[str, m.TenantModel, Obj]]:
    out: list[tuple[str, m.TenantModel, Obj]] = []
    for name in sorted(fixtures.EXAMPLES):
        model = fixtures.model(name)
        out.extend((name, model, obj) for obj in builders.build(model))
    return out


ALL = _all()
IDS = [f"{n}:{o['kind']}/{o['metadata']['name']}" for n, _, o in ALL]


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] in ("StatefulSet", "Deployment"):
        spec: Obj = obj["spec"]["template"]["spec"]
        return spec
    if obj["kind"] == "CronJob":
        job: Obj = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return job
    return None


def containers(spec: Obj) -> Iterator[Obj]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


@pytest.mark.parametrize(("name", "model", "obj"), ALL, ids=IDS)
def test_labels_namespace_and_owner(name: str, model: m.TenantModel, obj: Obj) -> None:
    meta = obj["metadata"]
    component = meta["labels"][m.LABEL_COMPONENT]
    assert component in COMPONENTS
    assert meta["labels"].items() >= model.labels(component).items()
    if obj["kind"] == "Namespace":
        assert meta["name"] == f"tenant-{model.name}"
        assert "namespace" not in meta
        assert "ownerReferences" not in meta
        for mode in ("enforce", "audit", "warn"):
            assert meta["labels"][f"pod-security.kubernetes.io/{mode}"] == "restricted"
        return
    assert meta["namespace"] == model.namespace
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "tenantry.io/v1alpha1",
            "kind": "Tenant",
            "name": model.name,
            "uid": fixtures.UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_names_unique_and_build_deterministic(name: str) -> None:
    objects = builders.build(fixtures.model(name))
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys))
    assert builders.build(fixtures.model(name)) == objects
    assert keys[0] == ("Namespace", f"tenant-{fixtures.model(name).name}")


WORKLOADS = [(n, mo, o) for n, mo, o in ALL if pod_spec(o) is not None]
WORKLOAD_IDS = [f"{n}:{o['kind']}/{o['metadata']['name']}" for n, _, o in WORKLOADS]


@pytest.mark.parametrize(("name", "model", "obj"), WORKLOADS, ids=WORKLOAD_IDS)
def test_pods_are_restricted_and_sized(name: str, model: m.TenantModel, obj: Obj) -> None:
    spec = pod_spec(obj)
    assert spec is not None
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] > 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for host_namespace in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(host_namespace)
    for volume in spec.get("volumes", []):
        assert "hostPath" not in volume
    is_job = obj["kind"] == "CronJob"
    for container in containers(spec):
        res = container["resources"]
        for bound in ("requests", "limits"):
            assert set(res[bound]) == {"cpu", "memory"}, container["name"]
            assert all(isinstance(v, str) and v for v in res[bound].values())
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc["readOnlyRootFilesystem"] is True
        # A Job's container runs to completion: probes would only add restarts.
        if not is_job:
            assert "readinessProbe" in container, container["name"]
            assert "livenessProbe" in container, container["name"]
            # Probed often until the server first answers (Ready moments after it
            # listens), with a budget of minutes for a slow start before a restart.
            startup = container["startupProbe"]
            assert startup["periodSeconds"] <= 2, container["name"]
            assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
            # Start-up checks what liveness checks later: a server that passed one and
            # failed the other would be restarted for ever.
            kind = next(k for k in ("httpGet", "tcpSocket", "exec") if k in startup)
            assert startup[kind] == container["livenessProbe"].get(kind), container["name"]


def test_probes_per_component() -> None:
    objects = {
        (o["kind"], o["metadata"]["name"]): o
        for o in builders.build(fixtures.model("tenant-sharded"))
    }

    def container(kind: str, name: str) -> Obj:
        c: Obj = objects[(kind, name)]["spec"]["template"]["spec"]["containers"][0]
        return c

    ch = container("StatefulSet", "ch-s0-r0")
    assert ch["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert ch["livenessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert {"name": "http", "containerPort": 8123, "protocol": "TCP"} in ch["ports"]
    keeper = container("StatefulSet", "keeper")
    assert keeper["readinessProbe"]["tcpSocket"] == {"port": "client"}
    assert {"name": "client", "containerPort": 9181, "protocol": "TCP"} in keeper["ports"]
    redis = container("StatefulSet", "redis")
    assert redis["readinessProbe"]["exec"]["command"] == ["redis-cli", "ping"]
    assert redis["livenessProbe"]["tcpSocket"] == {"port": "redis"}
    ingestion = container("Deployment", "ingestion")
    # Ready means Redis answers (a pod that cannot buffer must get no traffic).
    assert ingestion["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert ingestion["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert ingestion["args"] == ["ingest"]


def test_uids_per_image() -> None:
    objects = builders.build(fixtures.model("tenant-sharded"))
    uids = {
        o["metadata"]["name"]: spec["securityContext"]
        for o in objects
        if (spec := pod_spec(o)) is not None
    }
    for name in ("ch-s0-r0", "keeper"):
        assert uids[name]["runAsUser"] == uids[name]["fsGroup"] == 101
    for name in ("ingestion", "backup"):  # the Tenantry image
        assert uids[name]["runAsUser"] == uids[name]["fsGroup"] == 10001
    assert uids["redis"]["runAsUser"] == uids["redis"]["fsGroup"] == 999


def _env_entries(obj: Obj) -> Iterator[Obj]:
    spec = pod_spec(obj)
    if spec is None:
        return
    for container in containers(spec):
        yield from container.get("env", [])


@pytest.mark.parametrize(("name", "model", "obj"), ALL, ids=IDS)
def test_no_literal_password(name: str, model: m.TenantModel, obj: Obj) -> None:
    assert obj["kind"] != "Secret"
    for entry in _env_entries(obj):
        if SECRETISH.search(entry["name"]):
            assert "value" not in entry, entry["name"]
            assert set(entry["valueFrom"]) == {"secretKeyRef"}, entry["name"]
    text = json.dumps(obj)
    # Every <password> element in rendered config names an env var instead of a value.
    for match in re.finditer(r"<password[^>]*>", text):
        assert "from_env=" in match.group(0)
    assert "<password>" not in text
    spec = pod_spec(obj)
    for container in containers(spec) if spec else []:
        args = [*container.get("command", []), *container.get("args", [])]
        for i, arg in enumerate(args[:-1]):
            if arg == "--requirepass":
                assert args[i + 1] == "$(REDIS_PASSWORD)"


def test_secret_references_match_the_apply_contract() -> None:
    refs: set[tuple[str, str]] = set()
    for obj in builders.build(fixtures.model("tenant-sharded")):
        for entry in _env_entries(obj):
            if "valueFrom" in entry:
                ref = entry["valueFrom"]["secretKeyRef"]
                refs.add((ref["name"], ref["key"]))
    assert refs == {
        ("clickhouse-credentials", "admin-password"),
        ("clickhouse-credentials", "writer-password"),
        ("clickhouse-credentials", "reader-password"),
        ("clickhouse-interserver", "secret"),
        ("redis-credentials", "password"),
        ("backup-s3-credentials", "access-key-id"),
        ("backup-s3-credentials", "secret-access-key"),
        ("backup-s3-credentials", "endpoint"),
        ("backup-s3-credentials", "region"),
    }


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_ingestion_metrics_stay_off_the_public_port(name: str) -> None:
    """Producers reach the ingestion pods through the Service and the client policy: both
    carry the HTTP port only; /metrics is served on the pod's internal metrics port."""
    objs = builders.build(fixtures.model(name))
    (service,) = [
        o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "ingestion"
    ]
    assert [p["port"] for p in service["spec"]["ports"]] == [ingestion.PORT]
    (clients,) = [o for o in objs if o["metadata"]["name"] == "allow-ingestion-clients"]
    (rule,) = clients["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": ingestion.PORT}]
    (deploy,) = [
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "ingestion"
    ]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": ingestion.PORT, "metrics": ingestion.METRICS_PORT}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TENANTRY_METRICS_LISTEN"].endswith(f":{ingestion.METRICS_PORT}")


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_clickhouse_keeper_and_redis_metrics_ports_are_in_no_service(name: str) -> None:
    """Their Prometheus endpoints are the container ports named "metrics" (Redis's on its
    exporter sidecar): no Service (not the clients' ``clickhouse``, not a per-host,
    Keeper or Redis one) carries them."""
    objs = builders.build(fixtures.model(name))
    metrics_ports = {clickhouse.METRICS_PORT, keeper.METRICS_PORT, redis.METRICS_PORT}
    for obj in objs:
        if obj["kind"] == "Service":
            for port in obj["spec"]["ports"]:
                assert port["name"] != "metrics", obj["metadata"]["name"]
                assert port["port"] not in metrics_ports, obj["metadata"]["name"]
                assert port["targetPort"] != "metrics", obj["metadata"]["name"]
        if obj["kind"] == "StatefulSet":
            served = [
                p["containerPort"]
                for c in obj["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
                if p["name"] == "metrics"
            ]
            assert len(served) == 1, obj["metadata"]["name"]
            assert served[0] in metrics_ports, obj["metadata"]["name"]
