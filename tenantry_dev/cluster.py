"""Start and stop the local control plane as background processes.

State (certificates, etcd data, logs, pids, kubeconfig) lives in one directory, so
``make cluster-up`` and ``make cluster-down`` can run in different shells and a test
session can keep its cluster in a temporary directory of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tenantry_dev import pki as pkimod
from tenantry_dev import realnode, tools, waiting
from tenantry_dev.services import free_port

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Record who wrote what (metadata only); reads and lease renewals are not logged.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
"""
SERVICE_CIDR = "10.96.0.0/16"
KWOK_NODE_IP = "127.0.0.1"  # what the API server dials for a fake node's pod logs


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def fixed(cls, base: int = 16440) -> Ports:
        return cls(base + 1, base + 2, base + 3, base + 4, base + 5, base + 6)

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(6)))


@dataclass
class LocalCluster:
    """A local control plane rooted at ``state_dir``."""

    state_dir: Path
    ports: Ports = field(default_factory=Ports.fixed)
    nodes: int = 3
    log: Callable[[str], None] = print
    # "kwok": simulated nodes (fast, no containers); "real": one real node
    # (tenantry_dev/realnode.py: containerd, kubelet, kube-proxy, CoreDNS in a netns).
    node_kind: str = "kwok"
    # Every process dies with the thread that started it (SIGKILL through
    # PR_SET_PDEATHSIG): for tests, so that a killed test run leaves no cluster running;
    # the real node's host changes are then undone by the next `up` (RealNode.prepare_host).
    # `cluster up` from the CLI starts processes that outlive it.
    tied: bool = False

    def __post_init__(self) -> None:
        # Components run with the state directory as their working directory.
        self.state_dir = self.state_dir.resolve()
        if self.node_kind not in ("kwok", "real"):
            raise ValueError(f"nodes: kwok or real, not {self.node_kind!r}")
        if self.node_kind == "real":
            self.nodes = 1
            realnode.check_state_dir(self.state_dir)

    @property
    def real_node(self) -> realnode.RealNode:
        return realnode.RealNode(
            self.state_dir,
            service_cidr=SERVICE_CIDR,
            apiserver_port=self.ports.apiserver,
            log=self.log,
        )

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def install_crds(self, *, timeout: int = 60) -> None:
        """Apply the project's CRDs (crds/, server-side) and wait until all are
        Established."""
        from tenantry.api import GROUP, crdgen

        kubectl = str(tools.ensure(("kubectl",))["kubectl"])
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        for args in (
            ["apply", "--server-side", "-f", str(tools.REPO / "crds")],
            [
                "wait",
                "--for=condition=Established",
                f"--timeout={timeout}s",
                *(f"crd/{defn.plural}.{GROUP}" for defn in crdgen.ALL),
            ],
        ):
            subprocess.run([kubectl, *args], env=env, check=True, capture_output=True)

    @property
    def operator_kubeconfig(self) -> Path:
        """A kubeconfig with the operator's own identity (user tenantry-operator)."""
        return self.state_dir / "kubeconfig-operator"

    @property
    def audit_log(self) -> Path:
        """Metadata of every write, one JSON line each (see AUDIT_POLICY)."""
        return self.state_dir / "logs" / "audit.log"

    @property
    def _audit_policy(self) -> Path:
        return self.state_dir / "audit-policy.yaml"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def _pidfile(self) -> Path:
        return self.state_dir / "pids.json"

    # -- lifecycle ---------------------------------------------------------------
    def up(self, *, timeout: float = 120.0) -> float:
        """Start everything and wait until nodes are Ready; return the seconds it took."""
        start = time.monotonic()
        real = self.node_kind == "real"
        bins = tools.ensure(tools.NAMES + (tools.REAL_NODE if real else ()))
        images = tools.node_images() if real else None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.running():
            self.log(f"cluster already running ({self.kubeconfig})")
            return 0.0
        node = self.real_node
        if real:
            self.down()  # a half-started earlier run: stop it first (idempotent up)
            # Routes, nft table, netns and veth before any process starts.
            node.prepare_host()
        pki = pkimod.generate(self.state_dir / "pki")
        pkimod.kubeconfig(pki, server=self.server, path=self.kubeconfig)
        operator_cert = pkimod.issue_client(pki, user="tenantry-operator", group="system:masters")
        pkimod.kubeconfig(
            pki, server=self.server, path=self.operator_kubeconfig, client=operator_cert
        )
        self._audit_policy.write_text(AUDIT_POLICY)
        (self.state_dir / "ports.json").write_text(json.dumps(self.ports.__dict__))
        pids: dict[str, int] = {}
        try:
            pids["etcd"] = self._spawn("etcd", [str(bins["etcd"]), *self._etcd_args()])
            self._save(pids)  # from the first one on: down() stops what is in the file
            self._wait(
                lambda: self._http_ok(f"http://127.0.0.1:{self.ports.etcd_client}/health"),
                "etcd",
                timeout,
            )
            pids["kube-apiserver"] = self._spawn(
                "kube-apiserver", [str(bins["kube-apiserver"]), *self._apiserver_args(pki)]
            )
            self._save(pids)
            self._wait(self.ready, "kube-apiserver /readyz", timeout)
            pids["kube-controller-manager"] = self._spawn(
                "kube-controller-manager",
                [str(bins["kube-controller-manager"]), *self._kcm_args(pki)],
            )
            self._save(pids)
            pids["kube-scheduler"] = self._spawn(
                "kube-scheduler", [str(bins["kube-scheduler"]), *self._scheduler_args()]
            )
            self._save(pids)
            volumes = ["--volumes-dir", str(node.volumes_dir)] if real else []
            if not real:
                pids["kwok"] = self._spawn("kwok", [str(bins["kwok"]), *self._kwok_args()])
                self._save(pids)
            pids["provisioner"] = self._spawn(
                "provisioner",
                [sys.executable, "-m", "tenantry_dev.provisioner", str(self.state_dir), *volumes],
            )
            self._save(pids)
            if real:
                assert images is not None
                self._start_real_node(node, pki, bins, images, pids, timeout)
            else:
                self._create_nodes()
                self._wait(self._nodes_ready, f"{self.nodes} kwok nodes Ready", timeout)
            self._wait(self._default_sa, "default ServiceAccount", timeout)
            self._wait(self._storage_class, "default StorageClass", timeout)
        except BaseException:
            self.log("cluster start failed; logs are in " + str(self.state_dir / "logs"))
            self.down()
            raise
        took = time.monotonic() - start
        self.log(f"cluster up in {took:.1f} s; export KUBECONFIG={self.kubeconfig}")
        return took

    def _start_real_node(
        self,
        node: realnode.RealNode,
        pki: pkimod.Pki,
        bins: dict[str, Path],
        images: Path,
        pids: dict[str, int],
        timeout: float,
    ) -> None:
        """containerd (then the pause image), kubelet, kube-proxy and CoreDNS, each in the
        node's network namespace; returns once the node is Ready and DNS answers."""
        node.write_config(pki)
        pids["containerd"] = self._spawn("containerd", node.containerd_argv())
        self._save(pids)
        self._wait(node.containerd_socket.exists, "containerd socket", timeout)
        node.load_image(images / "pause.tar")
        pids["kubelet"] = self._spawn("kubelet", node.kubelet_argv(bins["kubelet"]))
        self._save(pids)
        pids["kube-proxy"] = self._spawn("kube-proxy", node.kube_proxy_argv(bins["kube-proxy"]))
        self._save(pids)
        for path, obj in node.dns_objects():
            status, body = self.request("POST", path, obj)
            name = obj["metadata"]["name"]  # type: ignore[index]
            # Kept in etcd from an earlier up of this state dir: fine as it is.
            if status != 201 and self.get(f"{path}/{name}")[0] != 200:
                raise RuntimeError(f"creating {path}: HTTP {status}: {body[:300]!r}")
        pids["coredns"] = self._spawn("coredns", node.coredns_argv(bins["coredns"]))
        self._save(pids)
        self._wait(self._nodes_ready, "the real node Ready", timeout)
        self._wait(lambda: self._http_ok(node.dns_ready_url()), "CoreDNS ready", timeout)

    def load_image(self, archive: Path) -> str:
        """Import a docker-archive tarball into the real node's containerd."""
        if not self.real_node.containerd_socket.exists():
            raise RuntimeError(f"no real node runs in {self.state_dir} (cluster up --nodes real)")
        return self.real_node.load_image(archive)

    def down(self) -> None:
        """Stop every component by its PID (SIGTERM, then SIGKILL), newest first; with a
        real node, then undo what it changed on the host (realnode.RealNode.stop)."""
        pids = self._load()
        for name in reversed(list(pids)):
            # A PID from a cluster that was killed without `down` may be anyone's by now.
            if not realnode.runs_in(pids[name], self.state_dir):
                continue
            if not _terminate(pids[name]):
                self.log(f"{name} (pid {pids[name]}) survived SIGKILL")
        self._pidfile.unlink(missing_ok=True)
        if self.real_node.dir.exists():
            self.real_node.stop()

    def destroy(self) -> None:
        self.down()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def running(self) -> bool:
        pids = self._load()
        return bool(pids) and all(_alive(p) for p in pids.values()) and self.ready()

    # -- readiness ---------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        pki = pkimod.Pki(self.state_dir / "pki")
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return ctx

    def get(self, path: str) -> tuple[int, bytes]:
        req = urllib.request.Request(self.server + path)  # noqa: S310 - https to loopback
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=5) as resp:  # noqa: S310
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def request(
        self, method: str, path: str, body: object, *, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(  # noqa: S310 - https to loopback
            self.server + path,
            method=method,
            data=json.dumps(body).encode(),
            headers={"Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=10) as resp:  # noqa: S310
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def ready(self) -> bool:
        try:
            status, body = self.get("/readyz")
        except OSError:
            return False
        return status == 200 and body.strip() == b"ok"

    def _nodes_ready(self) -> bool:
        status, body = self.get("/api/v1/nodes")
        if status != 200:
            return False
        items = json.loads(body)["items"]
        ready = [
            n
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.nodes

    def _default_sa(self) -> bool:
        status, _ = self.get("/api/v1/namespaces/default/serviceaccounts/default")
        return status == 200

    def _storage_class(self) -> bool:
        status, _ = self.get("/apis/storage.k8s.io/v1/storageclasses/standard")
        return status == 200

    def _create_nodes(self) -> None:
        for i in range(self.nodes):
            name = f"kwok-node-{i}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        FAKE_NODE_ANNOTATION: "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        "topology.kubernetes.io/zone": f"zone-{i % 3}",
                    },
                },
                "spec": {},
                "status": {
                    "allocatable": {"cpu": "256", "memory": "2Ti", "pods": "1000"},
                    "capacity": {"cpu": "256", "memory": "2Ti", "pods": "1000"},
                },
            }
            status, body = self.request("POST", "/api/v1/nodes", node)
            if status not in (201, 409):
                raise RuntimeError(f"creating node {name}: HTTP {status}: {body[:300]!r}")

    # -- processes ---------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> int:
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)
        out = (logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.state_dir,
            preexec_fn=_die_with_parent if self.tied else None,
        )
        out.close()
        self.log(f"started {name} (pid {proc.pid})")
        return proc.pid

    def _save(self, pids: dict[str, int]) -> None:
        self._pidfile.write_text(json.dumps(pids))

    def _load(self) -> dict[str, int]:
        try:
            data: dict[str, int] = json.loads(self._pidfile.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def _wait(self, check: Callable[[], bool], what: str, timeout: float) -> None:
        def gone() -> str | None:
            for name, pid in self._load().items():
                if not _alive(pid):
                    return f"{name} exited; see {self.state_dir}/logs/{name}.log"
            return None

        if not waiting.until(check, timeout=timeout, interval=0.2, gone=gone):
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        self.log(f"ready: {what}")

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                return int(resp.status) == 200
        except OSError:
            return False

    def _etcd_args(self) -> list[str]:
        p = self.ports
        return [
            "--name=default",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{p.etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{p.etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{p.etcd_peer}",
            "--unsafe-no-fsync=true",  # a throwaway development store; speed over durability
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]

    def _apiserver_args(self, pki: pkimod.Pki) -> list[str]:
        p = self.ports
        if self.node_kind == "real":
            # The node reaches it over the veth (the host nft table lets only lo and the
            # veth in), and it reaches the kubelet by IP, with a client certificate.
            kubelet_client = pkimod.issue_client(
                pki, user="kube-apiserver-kubelet-client", group="system:masters"
            )
            where = [
                "--bind-address=0.0.0.0",
                f"--advertise-address={realnode.HOST_IP}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={kubelet_client[0]}",
                f"--kubelet-client-key={kubelet_client[1]}",
                f"--kubelet-certificate-authority={pki.ca_cert}",
            ]
        else:
            # kwok's fake nodes advertise loopback (_kwok_args): a log, exec or
            # port-forward request for one of their pods dials 127.0.0.1, never the
            # host's DNS (a node's hostname) nor an address behind the default gateway.
            where = [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        return [
            f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
            *where,
            f"--secure-port={p.apiserver}",
            f"--tls-cert-file={pki.server_cert}",
            f"--tls-private-key-file={pki.server_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            f"--cert-dir={self.state_dir / 'pki'}",
            "--profiling=false",
            "--v=1",
            f"--audit-policy-file={self._audit_policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
        ]

    def _controller_args(self, port: int) -> list[str]:
        """What the controller manager and the scheduler share: the cluster's
        kubeconfig for everything, no leader election, the secure port on loopback."""
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
        ]

    def _kcm_args(self, pki: pkimod.Pki) -> list[str]:
        return [
            *self._controller_args(self.ports.controller_manager),
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allocate-node-cidrs=false",
            "--node-monitor-grace-period=60s",
            "--concurrent-statefulset-syncs=10",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--profiling=false",
            "--v=1",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            *self._controller_args(self.ports.scheduler),
            "--profiling=false",
            "--v=1",
        ]

    def _kwok_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
            "--manage-nodes-with-label-selector=",
            "--manage-single-node=",
            "--cidr=10.0.0.0/16",  # the fake pods' addresses: nothing here dials them
            f"--node-ip={KWOK_NODE_IP}",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{self.ports.kwok}",
        ]


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent thread exits (prctl(2))."""
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _terminate(pid: int, grace: float = 10.0) -> bool:
    """SIGTERM, at most ``grace`` seconds to exit, then SIGKILL and at most ``grace``
    more for it to be gone: never waits longer than that. False if it is still there."""
    if not _alive(pid):
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if _gone_within(pid, grace):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return _gone_within(pid, grace)


def _gone_within(pid: int, seconds: float) -> bool:
    return waiting.until(lambda: not _alive(pid), timeout=seconds, interval=0.05)
