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

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tenantry_dev import tools
from tests.support.helm import Helm as Helm  # the fixtures name it platform.Helm
from tests.support.kube import Kube
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
    for ns in tenant_namespaces:
        kube.try_run("wait", "--for=delete", f"namespace/{ns}", "--timeout=300s", timeout=400)
    helm.try_run("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "300s")
    for ns in (NAMESPACE, DEPS):
        kube.try_run("delete", "namespace", ns, "--wait=true", "--timeout=300s", timeout=400)


def ready_pods(kube: Kube, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["pods", "-n", namespace] + (["-l", selector] if selector else [])
    return [
        p
        for p in kube.get(*args)["items"]
        if p["status"].get("phase") == "Running"
        and all(c.get("ready") for c in p["status"].get("containerStatuses", []))
    ]


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
