"""Tenantry installed into a cluster whose nodes run real pods, the way a platform team
installs it: PostgreSQL and Redis for the control plane and an S3 server (SeaweedFS) for
the tenants' backups as pods, the internal token and the operator's S3 keys as Secrets,
then the Helm chart (operator and control plane as pods, with the chart's RBAC,
securityContext and probes), waited for until its pods are Ready.

``python -m tenantry_dev platform install|uninstall`` (``make platform-up``) runs it on
the local real-node cluster; tests/incluster runs the same command there and, with
TENANTRY_E2E_KUBECONFIG, on kind in users' CI. Only the images differ:

- ``Images.local()``: what this machine builds, since nothing can be pulled here (the
  tenantry image from scripts/image.sh; Debian's Redis and PostgreSQL, SeaweedFS's weed,
  and the ClickHouse and Keeper STAND-INS from scripts/standin-images.sh), imported
  into the node first;
- ``Images.official()``: the official images, on a cluster that can pull them (kind),
  with the tenantry image loaded into it.

Dev-only: the dev harness is not in the image.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tenantry_dev import tools
from tenantry_dev.cluster import LocalCluster
from tenantry_dev.services import WEED_VOLUME_LIMITS, SeaweedS3

CHART = tools.REPO / "charts" / "tenantry"
RELEASE = "tenantry"
NAMESPACE = "tenantry-system"
DEPS = "tenantry-deps"
CONTROLPLANE = f"{RELEASE}-controlplane"
OPERATOR = f"{RELEASE}-operator"
INTERNAL_SECRET = "tenantry-internal"  # noqa: S105 - the Secret's name
S3_SECRET = "tenantry-s3"  # noqa: S105 - the Secret's name (the chart's operator.s3)
S3_PORT = 8333
S3_ENDPOINT = f"http://s3.{DEPS}.svc:{S3_PORT}"
S3_ACCESS_KEY_ID = "tenantry-operator"


@dataclass(frozen=True)
class Images:
    tenantry: str
    postgres: str
    redis: str
    """The control plane's Redis."""
    s3: str
    """SeaweedFS (its weed binary is the image's entrypoint or on its PATH)."""
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
            ["bash", str(tools.REPO / "scripts" / "standin-images.sh"), "--list"],
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
            s3=by_repo["local/seaweedfs"],
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
            s3=f"chrislusf/seaweedfs:{weed_version()}",
            tenant_clickhouse="",  # the operator's defaults: the official images
            tenant_keeper="",
            tenant_redis="",
        )


def weed_version() -> str:
    """The version of SeaweedFS the dev lock pins (its ``weed`` beside this Python)."""
    first = subprocess.run(
        [SeaweedS3.binary(), "version"], capture_output=True, text=True, check=True
    ).stdout.split("\n", 1)[0]
    return first.split()[2]  # "version 8000GB 4.48 ..."


def load(
    state_dir: Path, archives: tuple[Path, ...], *, log: Callable[[str], None] = print
) -> None:
    """Import the tarballs into the real node's containerd in ``state_dir``."""
    if not archives:
        return
    cluster = LocalCluster(state_dir, node_kind="real", log=log)
    for archive in archives:
        log(f"imported {cluster.load_image(archive)}")


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
                "volumeMounts": [
                    {"name": "data", "mountPath": spec["mount"]},
                    *spec.get("mounts", []),
                ],
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": f"{name}-data"}},
            *spec.get("volumes", []),
        ],
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


def s3_identities(secret_access_key: str) -> str:
    """SeaweedFS's S3 identities: the operator's key, which may do everything (it
    creates the tenants' buckets; the jobs it renders use the same key)."""
    identity = {
        "name": "tenantry",
        "credentials": [{"accessKey": S3_ACCESS_KEY_ID, "secretKey": secret_access_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return json.dumps({"identities": [identity]})


def dependencies(images: Images, password: str) -> list[dict[str, Any]]:
    """PostgreSQL and Redis for the control plane, both password-protected (Redis refuses
    clients from other addresses than its own without one: protected mode), Redis
    persisting to its volume (it holds the sessions: README, "State the control plane
    keeps"), and SeaweedFS's S3 for the tenants' backups, which checks each request's
    signature against the one identity (``password`` is its secret key too)."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEPS}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "credentials", "namespace": DEPS},
            "stringData": {"password": password, "s3.json": s3_identities(password)},
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
        *_deployment(
            "s3",
            images.s3,
            {
                "port": S3_PORT,
                "mount": "/data",
                "container": {
                    # every component of `weed mini` inside the pod, on the pod's own
                    # loopback; only S3 is behind the Service
                    "command": ["weed"],
                    "args": [
                        *("mini", "-dir=/data", "-ip=127.0.0.1", "-ip.bind=0.0.0.0"),
                        f"-s3.port={S3_PORT}",
                        "-s3.config=/etc/seaweedfs/s3.json",
                        *("-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false"),
                        *("-webdav=false", "-master.telemetry=false"),
                        *WEED_VOLUME_LIMITS,
                    ],
                    "ports": [{"containerPort": S3_PORT}],
                    "readinessProbe": {"tcpSocket": {"port": S3_PORT}, "periodSeconds": 2},
                },
                "mounts": [{"name": "config", "mountPath": "/etc/seaweedfs", "readOnly": True}],
                "volumes": [
                    {
                        "name": "config",
                        "secret": {
                            "secretName": "credentials",
                            "items": [{"key": "s3.json", "path": "s3.json"}],
                        },
                    }
                ],
            },
        ),
    ]


def values(images: Images, password: str) -> dict[str, Any]:
    """The chart's values: these images, the dependencies' addresses, and the operator's
    S3 (the Secret ``install`` creates with ``password`` as the secret key)."""
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
            "s3": {"endpoint": S3_ENDPOINT, "existingSecret": S3_SECRET},
        },
        "controlplane": {
            "replicas": 1,
            "database": {
                "url": f"postgresql://postgres:{password}@postgres.{DEPS}.svc:5432/tenantry"
            },
            "redis": {"url": f"redis://:{password}@redis.{DEPS}.svc:6379/0"},
        },
    }


class _Tools:
    """kubectl and helm against one cluster (its kubeconfig); a failing command raises
    with what it printed."""

    def __init__(self, kubeconfig: Path) -> None:
        bins = tools.ensure(("kubectl", "helm"))
        self.kubectl = [str(bins["kubectl"]), "--kubeconfig", str(kubeconfig)]
        self.helm = [str(bins["helm"]), "--kubeconfig", str(kubeconfig)]

    @staticmethod
    def _run(argv: list[str], stdin: str | None, timeout: float, check: bool) -> int:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[3:])}: {done.stderr.strip() or done.stdout}")
        return done.returncode

    def k(self, *args: str, stdin: str | None = None, timeout: float, check: bool = True) -> int:
        return self._run([*self.kubectl, *args], stdin, timeout, check)

    def h(self, *args: str, stdin: str | None = None, timeout: float, check: bool = True) -> int:
        return self._run([*self.helm, *args], stdin, timeout, check)


def install(
    kubeconfig: Path, images: Images, *, timeout: float = 300, log: Callable[[str], None] = print
) -> None:
    """Dependencies, the internal token, then the chart, waited for until its pods are
    Ready (the chart's own readiness probes: the control plane's reaches PostgreSQL,
    Redis and Kubernetes). ``timeout`` bounds each wait."""
    t = _Tools(kubeconfig)
    password = secrets.token_urlsafe(18)
    log(f"PostgreSQL and Redis for the control plane, S3 for backups (namespace {DEPS})")
    t.k("apply", "-f", "-", stdin=yaml.safe_dump_all(dependencies(images, password)), timeout=60)
    t.k("create", "namespace", NAMESPACE, timeout=60)
    t.k(
        "create",
        "secret",
        "generic",
        INTERNAL_SECRET,
        "-n",
        NAMESPACE,
        f"--from-literal=internal-token={secrets.token_urlsafe(32)}",
        timeout=60,
    )
    t.k(
        "create",
        "secret",
        "generic",
        S3_SECRET,
        "-n",
        NAMESPACE,
        f"--from-literal=access-key-id={S3_ACCESS_KEY_ID}",
        f"--from-literal=secret-access-key={password}",
        timeout=60,
    )
    for name in ("postgres", "redis", "s3"):
        t.k(
            "rollout",
            "status",
            f"deployment/{name}",
            "-n",
            DEPS,
            f"--timeout={int(timeout)}s",
            timeout=timeout + 60,
        )
    log(f"helm install {RELEASE} (namespace {NAMESPACE})")
    t.h(
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
        f"{int(timeout)}s",
        stdin=yaml.safe_dump(values(images, password)),
        timeout=timeout + 60,
    )
    log(
        f"installed: kubectl --kubeconfig {kubeconfig} port-forward -n {NAMESPACE} "
        f"svc/{CONTROLPLANE} 8000:80, then http://127.0.0.1:8000/"
    )


def uninstall(kubeconfig: Path, *, timeout: float = 300) -> None:
    """Every Tenant deleted and its namespace gone (the operator still runs, so its
    finalizers clean up), then the release and the dependencies (the CRDs stay, as helm
    keeps them); each step bounded by ``timeout``, every step tried."""
    t = _Tools(kubeconfig)
    wait = f"--timeout={int(timeout)}s"
    t.k("delete", "tenants", "--all", wait, timeout=timeout + 100, check=False)
    listed = subprocess.run(
        [*t.kubectl, "get", "namespaces", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.split()
    tenant_namespaces = [n.split("/", 1)[1] for n in listed if n.startswith("namespace/tenant-")]
    # With reclaimPolicy Retain (the default) the operator keeps the namespace and its
    # volumes: removed here, as an admin would once the data is no longer wanted.
    for ns in tenant_namespaces:
        t.k(
            "delete", "namespace", ns, "--wait=false", "--ignore-not-found", timeout=60, check=False
        )
    for ns in tenant_namespaces:
        t.k("wait", "--for=delete", f"namespace/{ns}", wait, timeout=timeout + 100, check=False)
    t.h(
        "uninstall",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--wait",
        "--timeout",
        f"{int(timeout)}s",
        timeout=timeout + 100,
        check=False,
    )
    for ns in (NAMESPACE, DEPS):
        t.k(
            "delete",
            "namespace",
            ns,
            "--wait=true",
            wait,
            "--ignore-not-found",
            timeout=timeout + 100,
            check=False,
        )
