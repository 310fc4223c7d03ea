"""Tenantry installed into a cluster with real nodes the way a platform team installs it:
PostgreSQL and Redis for the control plane as pods, the internal token as a Secret, then
the Helm chart (operator and control plane as pods, with the chart's RBAC,
securityContext and probes). The same code runs on the local real-node cluster and on
kind in users' CI (TENANTRY_E2E_KUBECONFIG); only the images differ:

- ``Images.local()``: what this machine builds, since nothing can be pulled here (the
  tenantry image from scripts/image.sh; Debian's Redis and PostgreSQL and the ClickHouse
  and Keeper STAND-INS from scripts/standin-images.sh);
- ``Images.official()``: the official images, on a cluster that can pull them (kind),
  with the tenantry image loaded into it.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from tenantry_operator import apply
from tenantry_operator.model import MANAGED_BY

from tenantry import contract
from tenantry_dev import tools
from tests.support.helm import Helm as Helm  # the fixtures name it platform.Helm
from tests.support.kube import Kube
from tests.support.portforward import forward
from tests.support.wait import eventually, kubectl_timeout, scaled

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tenantry"
RELEASE = "tenantry"
NAMESPACE = "tenantry-system"
DEPS = "tenantry-deps"
CONTROLPLANE = f"{RELEASE}-controlplane"
OPERATOR = f"{RELEASE}-operator"
INTERNAL_SECRET = "tenantry-internal"


@dataclass(frozen=True)
class Images:
    tenantry: str
    postgres: str
    redis: str
    """The control plane's Redis."""
    tenant_clickhouse: str
    tenant_keeper: str
    tenant_redis: str
    """Repositories: the operator tags them with each Tenant's versions."""
    archives: tuple[Path, ...] = ()
    """docker-archive tarballs to import into the node first (local only)."""
    values_file: Path | None = None
    """The chart's values that choose these images (local: values-standins.yaml)."""

    @classmethod
    def local(cls) -> Images:
        folder = tools.node_images()
        listed = subprocess.run(
            ["bash", str(REPO / "scripts" / "standin-images.sh"), "--list"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        refs = dict(line.split(" ", 1) for line in listed if line.strip())
        by_repo = {ref.split(":")[0]: ref for ref in refs}
        archives = (folder / "tenantry.tar", *(Path(p) for p in refs.values()))
        missing = [str(a) for a in archives if not a.is_file()]
        assert not missing, f"build the images first (make test does): {missing}"
        values_file = CHART / "values-standins.yaml"
        chosen = yaml.safe_load(values_file.read_text())
        tenant = chosen["operator"]["tenantImages"]
        return cls(
            tenantry=f"{chosen['image']['repository']}:{chosen['image']['tag']}",
            postgres=by_repo["local/postgresql"],
            redis=by_repo["local/redis"],
            tenant_clickhouse=tenant["clickhouse"],
            tenant_keeper=tenant["keeper"],
            tenant_redis=tenant["redis"],
            archives=archives,
            values_file=values_file,
        )

    @classmethod
    def official(cls) -> Images:
        return cls(
            tenantry=os.environ.get("TENANTRY_E2E_IMAGE", "tenantry:dev"),
            postgres="postgres:15",
            redis="redis:7",
            tenant_clickhouse="",  # the operator's defaults: the official images
            tenant_keeper="",
            tenant_redis="",
        )


def load(state_dir: Path, archives: tuple[Path, ...]) -> None:
    """Import the tarballs into the real node's containerd (the dev harness's CLI)."""
    if not archives:
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tenantry_dev",
            "cluster",
            "load-image",
            *map(str, archives),
            "--state-dir",
            str(state_dir),
        ],
        check=True,
        timeout=scaled(600),
    )


def _deployment(name: str, image: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """A one-replica Deployment on a volume claim, and its Service."""
    labels = {"app": name}
    pod: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 999,
            "runAsGroup": 999,
            "fsGroup": 999,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": name,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                **spec["container"],
                "volumeMounts": [{"name": "data", "mountPath": spec["mount"]}],
            }
        ],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"{name}-data"}}],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"{name}-data", "namespace": DEPS},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": DEPS},
            "spec": {
                "strategy": {"type": "Recreate"},  # one writer of the volume at a time
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": DEPS},
            "spec": {"selector": labels, "ports": [{"port": spec["port"]}]},
        },
    ]


def dependencies(images: Images, password: str) -> list[dict[str, Any]]:
    """PostgreSQL and Redis for the control plane, both password-protected (Redis refuses
    clients from other addresses than its own without one: protected mode), Redis
    persisting to its volume (it holds the sessions: README, "State the control plane
    keeps")."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEPS}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "credentials", "namespace": DEPS},
            "stringData": {"password": password},
        },
        *_deployment(
            "postgres",
            images.postgres,
            {
                "port": 5432,
                "mount": "/var/lib/postgresql/data",
                "container": {
                    "env": [
                        {"name": "POSTGRES_DB", "value": "tenantry"},
                        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        {
                            "name": "POSTGRES_PASSWORD",
                            "valueFrom": {
                                "secretKeyRef": {"name": "credentials", "key": "password"}
                            },
                        },
                    ],
                    "ports": [{"containerPort": 5432}],
                    "readinessProbe": {
                        "tcpSocket": {"port": 5432},
                        "periodSeconds": 2,
                    },
                },
            },
        ),
        *_deployment(
            "redis",
            images.redis,
            {
                "port": 6379,
                "mount": "/data",
                "container": {
                    "command": ["redis-server"],
                    "args": [
                        *("--dir", "/data", "--save", "", "--appendonly", "yes"),
                        *("--requirepass", "$(REDIS_PASSWORD)"),
                    ],
                    "env": [
                        {
                            "name": "REDIS_PASSWORD",
                            "valueFrom": {
                                "secretKeyRef": {"name": "credentials", "key": "password"}
                            },
                        }
                    ],
                    "ports": [{"containerPort": 6379}],
                    "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 2},
                },
            },
        ),
    ]


def values(images: Images, password: str) -> dict[str, Any]:
    repository, _, tag = images.tenantry.rpartition(":")
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "internalToken": {"existingSecret": INTERNAL_SECRET},
        "operator": {
            "tenantImages": {
                "clickhouse": images.tenant_clickhouse,
                "keeper": images.tenant_keeper,
                "redis": images.tenant_redis,
            },
        },
        "controlplane": {
            "replicas": 1,
            "database": {
                "url": f"postgresql://postgres:{password}@postgres.{DEPS}.svc:5432/tenantry"
            },
            "redis": {"url": f"redis://:{password}@redis.{DEPS}.svc:6379/0"},
        },
    }


def install(kube: Kube, images: Images) -> Helm:
    """Dependencies, the internal token, then the chart, waited for until its pods are
    Ready (the chart's own readiness probes: the control plane's reaches PostgreSQL,
    Redis and Kubernetes)."""
    password = secrets.token_urlsafe(18)
    kube.run("apply", "-f", "-", stdin=yaml.safe_dump_all(dependencies(images, password)))
    kube.run("create", "namespace", NAMESPACE)
    kube.run(
        "create",
        "secret",
        "generic",
        INTERNAL_SECRET,
        "-n",
        NAMESPACE,
        f"--from-literal=internal-token={secrets.token_urlsafe(32)}",
    )
    for name in ("postgres", "redis"):
        kube.run(
            "rollout",
            "status",
            f"deployment/{name}",
            "-n",
            DEPS,
            f"--timeout={kubectl_timeout(300)}",
        )
    helm = Helm(kube)
    helm.run(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        *(["--values", str(images.values_file)] if images.values_file else []),
        "--values",
        "-",
        "--wait",
        "--timeout",
        kubectl_timeout(300),
        stdin=yaml.safe_dump(values(images, password)),
    )
    return helm


def uninstall(kube: Kube, helm: Helm) -> None:
    """Every Tenant deleted and its namespace gone (the operator still runs, so its
    finalizers clean up), then the release and the dependencies (the CRDs stay, as helm
    keeps them); each step bounded, every step tried."""
    kube.try_run("delete", "tenants", "--all", f"--timeout={kubectl_timeout(300)}", timeout=400)
    tenant_namespaces = [
        ns["metadata"]["name"]
        for ns in kube.get("namespaces")["items"]
        if ns["metadata"]["name"].startswith("tenant-")
    ]
    # With reclaimPolicy Retain (the default) the operator keeps the namespace and its
    # volumes: removed here, as an admin would once the data is no longer wanted.
    for ns in tenant_namespaces:
        kube.try_run("delete", "namespace", ns, "--wait=false", "--ignore-not-found")
    for ns in tenant_namespaces:
        kube.try_run("wait", "--for=delete", f"namespace/{ns}", "--timeout=300s", timeout=400)
    helm.try_run("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "300s")
    for ns in (NAMESPACE, DEPS):
        kube.try_run("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=400)


def is_ready(pod: dict[str, Any]) -> bool:
    """Running, and every container of it started and Ready."""
    statuses = pod["status"].get("containerStatuses") or []
    return (
        pod["status"].get("phase") == "Running"
        and bool(statuses)
        and all(c.get("ready") for c in statuses)
    )


def ready_pods(kube: Kube, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["pods", "-n", namespace] + (["-l", selector] if selector else [])
    return [p for p in kube.get(*args)["items"] if is_ready(p)]


def wait_rollout(kube: Kube, namespace: str, what: str, timeout: float = 300) -> None:
    eventually(
        lambda: (
            kube.try_run(
                "rollout", "status", what, "-n", namespace, f"--timeout={kubectl_timeout(30)}"
            ).code
            == 0
        ),
        timeout=timeout,
        what=f"{namespace}/{what} rolled out",
    )


def release_pods(kube: Kube, component: str) -> list[dict[str, Any]]:
    """The release's pods of ``component`` (operator, controlplane), deleted ones left out."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    return [
        p
        for p in kube.get("pods", "-n", NAMESPACE, "-l", selector)["items"]
        if not p["metadata"].get("deletionTimestamp")
    ]


def clickhouse_password(kube: Kube, namespace: str) -> str:
    """The tenant's ClickHouse admin password, from the Secret the operator generated."""
    data = kube.get("secret", contract.CLICKHOUSE_SECRET, "-n", namespace)["data"]
    return base64.b64decode(data[contract.CLICKHOUSE_PASSWORD_KEYS["admin"]]).decode()


async def query(ch: httpx.AsyncClient, sql: str, password: str) -> str:
    """``sql`` through the ClickHouse HTTP interface of ``ch`` (a forwarded Service)."""
    r = await ch.post(
        "/", content=sql, headers={"X-ClickHouse-User": "admin", "X-ClickHouse-Key": password}
    )
    assert r.status_code == 200, r.text
    return r.text.strip()


def clickhouse(kube: Kube, namespace: str, sql: str) -> str:
    """``sql`` run as the tenant's admin through its ``clickhouse`` Service (forwarded
    for this one statement)."""
    password = clickhouse_password(kube, namespace)
    with forward(
        kube, namespace, contract.CLICKHOUSE_SERVICE, contract.CLICKHOUSE_HTTP_PORT
    ) as url:
        r = httpx.post(
            url,
            content=sql,
            headers={"X-ClickHouse-User": "admin", "X-ClickHouse-Key": password},
            timeout=scaled(60),
        )
    assert r.status_code == 200, r.text
    return r.text.strip()


def tenant_status(kube: Kube, name: str) -> dict[str, Any]:
    tenant = kube.get_or_none("tenant", name)
    return dict((tenant or {}).get("status") or {})


def wait_tenant(kube: Kube, name: str, phase: str = "Ready", timeout: float = 600) -> None:
    """Until the Tenant's status says ``phase`` for its current generation."""

    def seen() -> tuple[str | None, bool]:
        tenant = kube.get("tenant", name)
        status = tenant.get("status") or {}
        current = status.get("observedGeneration") == tenant["metadata"]["generation"]
        return status.get("phase"), current

    eventually(
        seen, accept=lambda s: s == (phase, True), timeout=timeout, what=f"Tenant {name} {phase}"
    )


def children(kube: Kube, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    """What the operator made in a tenant's namespace, by (kind, name): the kinds it
    applies and prunes (tenantry_operator.apply.PRUNABLE), its Secrets and the volume
    claims of its StatefulSets."""
    kinds = [k.plural for k in apply.PRUNABLE] + ["secrets", "persistentvolumeclaims"]
    items = kube.get(",".join(kinds), "-n", namespace)["items"]
    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in items
        if o["kind"] == "PersistentVolumeClaim"
        or (o["metadata"].get("labels") or {}).get(contract.LABEL_MANAGED_BY) == MANAGED_BY
    }


@dataclass(frozen=True)
class Volume:
    claim: str
    pv: str
    path: Path | None
    """The directory on the node (hostPath, or a local volume's path), when it has one."""


def volumes(kube: Kube, namespace: str) -> list[Volume]:
    """The namespace's claims, with the volume bound to each."""
    out = []
    for pvc in kube.get("pvc", "-n", namespace)["items"]:
        pv = kube.get("pv", pvc["spec"]["volumeName"])
        source = pv["spec"].get("hostPath") or pv["spec"].get("local") or {}
        path = Path(source["path"]) if source.get("path") else None
        out.append(Volume(pvc["metadata"]["name"], pv["metadata"]["name"], path))
    return out
