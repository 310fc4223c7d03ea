"""A real node for the local cluster: containerd + runc, CNI bridge, kubelet, kube-proxy
and CoreDNS, inside a network namespace of its own (``cluster up --nodes real``).

The recipe is ../shared/RECIPES.md, "Real nodes"; docs/real-nodes.md has the details.

Network safety (the hard rule: nothing leaves this machine). Before any process starts:
- the host gets blackhole routes for the pod and Service CIDRs, so a packet to either
  can never take the default route, at any moment;
- an nft table ``inet tenantry_node`` on the host rejects 10/8 on the uplink(s), drops
  anything forwarded to or from the node's veth, and lets only ``lo`` and the veth reach
  the API server's port (it listens on all addresses so the node can reach it);
- the node's daemons run in the network namespace ``tenantry-node`` (``nsenter --net``,
  not ``ip netns exec``, so they share the host's mount namespace), linked to the host
  only by a veth /30 from a documentation range, with no default route inside: off-node
  destinations are unreachable from a pod. Pod traffic to the API server (through the
  ``kubernetes`` Service) is masqueraded to the node's veth address.

``stop`` (``cluster down``) leaves the machine as it was found: pods killed through the
node's cgroups, shims and daemons stopped by PID, mounts under the state directory
undone, the cgroup tree, netns, veth, nft table and routes removed, and the sysctls the
kubelet rewrites restored to their saved values.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tenantry_dev import pki as pkimod

NETNS = "tenantry-node"
NODE_NAME = "tenantry-node"
VETH_HOST, VETH_NODE = "tnt-host", "tnt-node"
# A documentation range (RFC 5737): never routed anywhere. The kubelet refuses a
# loopback or link-local node IP.
HOST_IP, NODE_IP, VETH_PREFIX = "198.51.100.1", "198.51.100.2", 30
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
BRIDGE = "tnt0"
CGROUP_ROOT = "tenantry-node"
NFT_HOST_TABLE = "tenantry_node"
NFT_NODE_TABLE = "tenantry_node_nat"
PAUSE_IMAGE = "local/pause:tenantry"
# The sysctls the kubelet rewrites at start (setupKernelTunables); restored on stop.
KUBELET_SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
# Host paths the kubelet and the CNI plugins use whatever they are told; removed on stop
# when they did not exist before the node started.
GLOBAL_PATHS = (
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",  # the shims' sockets (/run/containerd/s) whatever the config says
)
OWNER_FILE = Path("/run/tenantry-node.owner")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def netns_exists() -> bool:
    return Path("/run/netns", NETNS).exists()


SOCKET_PATH_MAX = 104
"""containerd refuses a unix socket path longer than this (its ttrpc socket is the
longest: ``<state>/node/containerd/containerd.sock.ttrpc``)."""


def check_state_dir(state_dir: Path) -> None:
    """Refuse, before anything starts, a state dir whose sockets containerd could not
    bind (it would exit with "unix socket path too long" once the control plane runs)."""
    ttrpc = f"{RealNode(state_dir, '', 0).containerd_socket}.ttrpc"
    if len(ttrpc.encode()) > SOCKET_PATH_MAX:
        raise ValueError(
            f"state dir {state_dir} is too long for a real node: containerd's socket "
            f"{ttrpc} would be {len(ttrpc.encode())} bytes, over the {SOCKET_PATH_MAX} a "
            "unix socket path may have; choose a shorter --state-dir"
        )


PROC = Path("/proc")


def _cwd_is(proc: Path, state: Path) -> bool:
    """Whether the process at ``proc`` (``/proc/<pid>``) works in ``state`` (resolved)."""
    try:
        return (proc / "cwd").resolve() == state
    except OSError:
        return False


def runs_in(pid: int, state_dir: Path) -> bool:
    """Whether process ``pid`` is one a cluster in ``state_dir`` started: every daemon runs
    with the state directory as its working directory (cluster.LocalCluster._spawn). A PID
    read from an old pids.json may belong to anything by now (after a reboot, or a session
    whose processes were all killed): never signal it unless this holds."""
    return _cwd_is(PROC / str(pid), state_dir.resolve())


def processes_of(state_dir: Path, *, proc: Path = PROC, command_line: bool = False) -> list[int]:
    """One walk of ``proc``: the processes whose working directory is ``state_dir`` (as
    ``runs_in`` says) and, with ``command_line``, also those whose command line names a
    path under it (this process excepted: its own arguments may name the state dir)."""
    state = state_dir.resolve()
    mark = (str(state) + "/").encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if _cwd_is(entry, state):
            found.append(pid)
        elif command_line and pid != os.getpid():
            with contextlib.suppress(OSError):
                if mark in (entry / "cmdline").read_bytes():
                    found.append(pid)
    return sorted(found)


def daemons(state_dir: Path) -> list[int]:
    """The cluster's own processes (etcd, the API server, containerd, the kubelet...):
    those whose working directory is ``state_dir``. The cluster runs while one does."""
    return processes_of(state_dir)


def holders(state_dir: Path) -> list[int]:
    """Every live process of the real-node cluster in ``state_dir``: its daemons, the
    containerd shims (their command line names its socket, under ``state_dir``) and the
    pods' processes (in the node's cgroups, whose name is machine-wide: only one real
    node runs at a time). Shims and pods outlive the daemons when those are killed."""
    found = set(processes_of(state_dir, command_line=True))
    for d in RealNode._cgroup_dirs():
        if d.exists():
            for procs in d.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    found |= {int(p) for p in procs.read_text().split()}
    return sorted(found)


def in_node(*argv: str) -> list[str]:
    """``argv`` run in the node's network namespace (the host's mount namespace)."""
    return ["nsenter", f"--net=/run/netns/{NETNS}", "--", *argv]


def uplinks() -> list[str]:
    """The devices the host's default routes leave by."""
    out = _run("ip", "-j", "route", "show", "default").stdout or "[]"
    return sorted({r["dev"] for r in json.loads(out) if "dev" in r})


def route_via(address: str) -> dict[str, object]:
    """What ``ip route get`` says for ``address`` from the host's namespace (type
    ``blackhole``/``unreachable`` comes back as an error, reported as such)."""
    done = _run("ip", "-j", "route", "get", address, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip()}
    routes: list[dict[str, object]] = json.loads(done.stdout)
    return routes[0]


@dataclass
class RealNode:
    """The node's files live in ``state_dir/node``; ``service_cidr`` and ``apiserver_port``
    come from the cluster it joins."""

    state_dir: Path
    service_cidr: str
    apiserver_port: int
    log: Callable[[str], None] = print

    @property
    def dir(self) -> Path:
        return self.state_dir / "node"

    @property
    def volumes_dir(self) -> Path:
        return self.state_dir / "volumes"

    @property
    def containerd_socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"

    @property
    def _host_state(self) -> Path:
        return self.dir / "host-state.json"

    @property
    def apiserver_url(self) -> str:
        """How the node (and its pods, through the veth) reach the API server."""
        return f"https://{HOST_IP}:{self.apiserver_port}"

    # -- the host side: before anything starts --------------------------------------------
    def prepare_host(self) -> None:
        """Save what will be changed, then routes, nft table, netns and veth (idempotent)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        owner = OWNER_FILE.read_text().strip() if OWNER_FILE.exists() else ""
        if owner and owner != str(self.state_dir) and netns_exists():
            self._reclaim_from(Path(owner))
        OWNER_FILE.write_text(str(self.state_dir))
        if not self._host_state.exists():
            saved = {
                "sysctls": {k: _sysctl_path(k).read_text().strip() for k in KUBELET_SYSCTLS},
                "absent_paths": [p for p in GLOBAL_PATHS if not Path(p).exists()],
            }
            self._host_state.write_text(json.dumps(saved))
        for cidr in (POD_CIDR, self.service_cidr):
            existing = _run("ip", "route", "show", "exact", cidr).stdout.strip()
            if existing and not existing.startswith("blackhole"):
                raise RuntimeError(f"the host already routes {cidr} ({existing}): not touching it")
            _run("ip", "route", "replace", "blackhole", cidr)
        self._host_nft()
        if not netns_exists():
            _run("ip", "netns", "add", NETNS)
        _run(*in_node("ip", "link", "set", "lo", "up"))
        if _run("ip", "link", "show", VETH_HOST, check=False).returncode != 0:
            _run("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NODE)
            _run("ip", "link", "set", VETH_NODE, "netns", NETNS)
        _run("ip", "addr", "replace", f"{HOST_IP}/{VETH_PREFIX}", "dev", VETH_HOST)
        _run("ip", "link", "set", VETH_HOST, "up")
        _run(*in_node("ip", "addr", "replace", f"{NODE_IP}/{VETH_PREFIX}", "dev", VETH_NODE))
        _run(*in_node("ip", "link", "set", VETH_NODE, "up"))
        # Both are per network namespace: routing between the pods' bridge and the veth,
        # and bridged pod traffic through nft (Service replies between pods on the bridge).
        _run(*in_node("sysctl", "-qw", "net.ipv4.ip_forward=1"))
        _run(*in_node("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"), check=False)
        self._node_nft()
        self._cgroups()

    def _reclaim_from(self, owner: Path) -> None:
        """Another state dir holds the host resources. Refused while a daemon of that
        cluster runs; otherwise it was killed without ``cluster down`` (a session or CI
        job stopped, a reboot) and what it left on the host is undone first (its shims and
        pods killed too), from its own saved host state where that still exists."""
        alive = daemons(owner)
        if alive:
            raise RuntimeError(
                f"another real-node cluster (state dir {owner}) holds the netns {NETNS} and "
                f"still runs (pids {' '.join(map(str, alive[:8]))}): run "
                f"`python -m tenantry_dev cluster down --state-dir {owner}` first"
            )
        self.log(
            f"another real-node cluster (state dir {owner}) left the netns {NETNS} behind and "
            "none of its daemons runs: undoing what it changed on the host first"
        )
        RealNode(owner, self.service_cidr, self.apiserver_port, self.log).stop()
        # Its images and container snapshots (gigabytes: every imported archive, unpacked)
        # can only be used by a node of its own, which no longer runs; its logs,
        # certificates and volumes (tenant data) stay.
        store = owner / "node" / "containerd"
        if store.is_dir():
            _run("rm", "-rf", "--one-file-system", str(store), check=False)
            self.log(f"removed the killed node's images and snapshots ({store})")

    def _host_nft(self) -> None:
        reject = "".join(f'    oifname "{dev}" ip daddr 10.0.0.0/8 reject\n' for dev in uplinks())
        port = self.apiserver_port
        rules = (
            f"table inet {NFT_HOST_TABLE} {{\n"
            "  chain output {\n    type filter hook output priority 0; policy accept;\n"
            f"{reject}  }}\n"
            "  chain input {\n    type filter hook input priority 0; policy accept;\n"
            f'    tcp dport {port} iifname "lo" accept\n'
            f'    tcp dport {port} iifname "{VETH_HOST}" accept\n'
            f"    tcp dport {port} drop\n  }}\n"
            "  chain forward {\n    type filter hook forward priority 0; policy accept;\n"
            f'    iifname "{VETH_HOST}" drop\n    oifname "{VETH_HOST}" drop\n  }}\n}}\n'
        )
        _run("nft", "delete", "table", "inet", NFT_HOST_TABLE, check=False)
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)

    def _node_nft(self) -> None:
        rules = (
            f"table ip {NFT_NODE_TABLE} {{\n"
            "  chain postrouting {\n    type nat hook postrouting priority 100;\n"
            f'    ip saddr {POD_CIDR} oifname "{VETH_NODE}" masquerade\n  }}\n}}\n'
        )
        _run(*in_node("nft", "delete", "table", "ip", NFT_NODE_TABLE), check=False)
        subprocess.run(in_node("nft", "-f", "-"), input=rules, text=True, check=True)

    @staticmethod
    def _cgroup_dirs() -> list[Path]:
        base = Path("/sys/fs/cgroup")
        return [d / CGROUP_ROOT for d in sorted(base.iterdir()) if d.name != "unified"]

    def _cgroups(self) -> None:
        """The kubelet's ``cgroupRoot`` (it must exist), in every v1 hierarchy."""
        for d in self._cgroup_dirs():
            d.mkdir(exist_ok=True)
            if d.parent.name == "cpuset":
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if not (d / f).read_text().strip():
                        (d / f).write_text((d.parent / f).read_text())

    # -- configuration --------------------------------------------------------------------
    def write_config(self, pki: pkimod.Pki) -> None:
        d = self.dir
        for sub in ("containerd", "kubelet", "kube-proxy", "coredns", "cni/net.d", "pod-logs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self.volumes_dir.mkdir(parents=True, exist_ok=True)
        for user, group, name in (
            (f"system:node:{NODE_NAME}", "system:nodes", "kubelet"),
            ("system:kube-proxy", "system:node-proxier", "kube-proxy"),
            ("system:tenantry-coredns", "tenantry:coredns", "coredns"),
        ):
            cert = pkimod.issue_client(pki, user=user, group=group)
            pkimod.kubeconfig(
                pki, server=self.apiserver_url, path=d / name / "kubeconfig", client=cert
            )
        serving = pkimod.issue_server(pki, name="kubelet-serving", ips=[NODE_IP])
        (d / "containerd" / "config.toml").write_text(self._containerd_toml())
        (d / "cni" / "net.d" / "10-tenantry.conflist").write_text(json.dumps(self._cni()))
        (d / "kubelet" / "config.yaml").write_text(yaml.safe_dump(self._kubelet(pki, serving)))
        (d / "kube-proxy" / "config.yaml").write_text(yaml.safe_dump(self._kube_proxy()))
        (d / "coredns" / "Corefile").write_text(self._corefile())

    def _containerd_toml(self) -> str:
        c = self.dir / "containerd"
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return textwrap.dedent(f"""\
            version = 2
            root = "{c / "root"}"
            state = "{c / "state"}"
            [grpc]
              address = "{self.containerd_socket}"
            [ttrpc]
              address = "{self.containerd_socket}.ttrpc"
            [{cri}]
              sandbox_image = "{PAUSE_IMAGE}"
              # No CAP_SYS_RESOURCE in this sandbox: without it every pod fails with
              # "can't get final child's PID from pipe: EOF".
              restrict_oom_score_adj = true
              enable_selinux = false
              # The pods' network namespaces under the state dir, not /run/netns.
              netns_mounts_under_state_dir = true
            [{cri}.containerd]
              snapshotter = "overlayfs"
              default_runtime_name = "runc"
            [{cri}.containerd.runtimes.runc]
              runtime_type = "io.containerd.runc.v2"
            [{cri}.containerd.runtimes.runc.options]
              SystemdCgroup = false
              Root = "{c / "runc"}"
            [{cri}.cni]
              bin_dir = "/usr/lib/cni"
              conf_dir = "{self.dir / "cni" / "net.d"}"
            """)

    def _cni(self) -> dict[str, object]:
        return {
            "cniVersion": "0.4.0",
            "name": "tenantry",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,  # no iptables here; the node's nft table masquerades
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": NODE_POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.dir / "cni" / "ipam"),
                    },
                }
            ],
        }

    def _kubelet(self, pki: pkimod.Pki, serving: tuple[Path, Path]) -> dict[str, object]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(serving[0]),
            "tlsPrivateKeyFile": str(serving[1]),
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{CGROUP_ROOT}",
            "failCgroupV1": False,
            "failSwapOn": False,
            "resolvConf": "",  # pods never inherit the host's resolver
            "clusterDNS": [CLUSTER_DNS],
            "clusterDomain": CLUSTER_DOMAIN,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(self.dir / "pod-logs"),
            "makeIPTablesUtilChains": False,
            # Locally imported images cannot be pulled again: never collect them, and
            # never evict for a full disk of a shared development machine.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "0%",
                "imagefs.available": "0%",
                "nodefs.inodesFree": "0%",
            },
            "staticPodPath": "",
            "serializeImagePulls": False,
        }

    def _kube_proxy(self) -> dict[str, object]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "nftables",
            "clientConnection": {"kubeconfig": str(self.dir / "kube-proxy" / "kubeconfig")},
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "clusterCIDR": POD_CIDR,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # 0: leave the (host-wide) conntrack sysctls alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }

    def _corefile(self) -> str:
        kubeconfig = self.dir / "coredns" / "kubeconfig"
        # No `forward`: names outside the cluster get no answer from anywhere else.
        return textwrap.dedent(f"""\
            .:53 {{
                bind {NODE_IP}
                errors
                ready {NODE_IP}:8181
                kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
                    kubeconfig {kubeconfig} tenantry-local
                    pods insecure
                    fallthrough in-addr.arpa ip6.arpa
                }}
                cache 30
            }}
            """)

    # -- processes (started by LocalCluster._spawn, stopped by PID) ---------------------
    def containerd_argv(self) -> list[str]:
        return in_node("containerd", "--config", str(self.dir / "containerd" / "config.toml"))

    def kubelet_argv(self, kubelet: Path) -> list[str]:
        return in_node(
            str(kubelet),
            f"--config={self.dir / 'kubelet' / 'config.yaml'}",
            f"--kubeconfig={self.dir / 'kubelet' / 'kubeconfig'}",
            f"--root-dir={self.dir / 'kubelet' / 'root'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        )

    def kube_proxy_argv(self, kube_proxy: Path) -> list[str]:
        return in_node(
            str(kube_proxy), f"--config={self.dir / 'kube-proxy' / 'config.yaml'}", "--v=1"
        )

    def coredns_argv(self, coredns: Path) -> list[str]:
        return in_node(str(coredns), "-conf", str(self.dir / "coredns" / "Corefile"))

    def dns_objects(self) -> list[tuple[str, dict[str, object]]]:
        """(collection path, object): what CoreDNS needs in the API: read access for its
        identity, and the ``kube-dns`` Service at ``CLUSTER_DNS`` whose one endpoint is
        CoreDNS on the node's address."""
        rule = {
            "apiGroups": [""],
            "resources": ["endpoints", "services", "pods", "namespaces"],
            "verbs": ["list", "watch"],
        }
        slices = {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch"],
        }
        ports = [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ]
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        return [
            (
                f"{rbac}/clusterroles",
                {"metadata": {"name": "tenantry:coredns"}, "rules": [rule, slices]},
            ),
            (
                f"{rbac}/clusterrolebindings",
                {
                    "metadata": {"name": "tenantry:coredns"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "tenantry:coredns",
                    },
                    "subjects": [
                        {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Group",
                            "name": "tenantry:coredns",
                        }
                    ],
                },
            ),
            (
                "/api/v1/namespaces/kube-system/services",
                {
                    "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
                    "spec": {"clusterIP": CLUSTER_DNS, "ports": ports},
                },
            ),
            (
                "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
                {
                    "metadata": {
                        "name": "kube-dns-node",
                        "labels": {
                            "kubernetes.io/service-name": "kube-dns",
                            "endpointslice.kubernetes.io/managed-by": "tenantry-dev",
                        },
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
                    "ports": ports,
                },
            ),
        ]

    def dns_ready_url(self) -> str:
        return f"http://{NODE_IP}:8181/ready"

    # -- images -----------------------------------------------------------------------------
    def load_image(self, archive: Path) -> str:
        """Import a docker-archive tarball into the node's containerd (namespace k8s.io,
        where the kubelet looks); returns ctr's output."""
        done = _run(
            "ctr",
            "--address",
            str(self.containerd_socket),
            "-n",
            "k8s.io",
            "images",
            "import",
            str(archive),
        )
        return done.stdout.strip()

    # -- teardown -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Undo everything ``prepare_host`` and the daemons did (after the daemons were
        stopped by PID). Idempotent; safe when nothing was started. The machine-wide
        parts (cgroups, netns, veth, nft table, routes, sysctls) only when this state dir
        holds them: an ``up`` refused because another cluster holds them must not tear
        that one down."""
        self._kill_shims()
        owner = OWNER_FILE.read_text().strip() if OWNER_FILE.exists() else ""
        if owner and owner != str(self.state_dir):
            self._unmount_all()
            self.log(f"the node's host resources belong to {owner}: left alone")
            return
        self._kill_cgroup_processes()
        self._unmount_all()
        self._remove_cgroups()
        if netns_exists():
            _run("ip", "netns", "del", NETNS, check=False)
        _run("ip", "link", "del", VETH_HOST, check=False)
        _run("nft", "delete", "table", "inet", NFT_HOST_TABLE, check=False)
        for cidr in (POD_CIDR, self.service_cidr):
            if _run("ip", "route", "show", "exact", cidr).stdout.startswith("blackhole"):
                _run("ip", "route", "del", "blackhole", cidr, check=False)
        self._restore_host_state()
        with contextlib.suppress(OSError):
            if OWNER_FILE.read_text().strip() == str(self.state_dir):
                OWNER_FILE.unlink()

    def _kill_cgroup_processes(self) -> None:
        """SIGKILL every process in the node's cgroups (the pods' containers and their
        pause processes), by PID, until none is left."""
        for _ in range(50):
            pids = set()
            for d in self._cgroup_dirs():
                if d.exists():
                    for procs in d.rglob("cgroup.procs"):
                        with contextlib.suppress(OSError):
                            pids |= {int(p) for p in procs.read_text().split()}
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _run("sleep", "0.1")

    def _kill_shims(self) -> None:
        """The containerd shims of this node's containerd (their command line names its
        socket), by PID."""
        sock = str(self.containerd_socket)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and sock.encode() in argv:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)

    def _unmount_all(self) -> None:
        """Every mount under the node's folder (volumes, secrets, overlay roots, shm),
        deepest first."""
        prefix = str(self.dir) + "/"
        for _ in range(3):
            mounts = []
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(prefix) or point == str(self.dir):
                    mounts.append(point)
            if not mounts:
                return
            for point in sorted(set(mounts), key=len, reverse=True):
                if _run("umount", point, check=False).returncode != 0:
                    _run("umount", "-l", point, check=False)

    def _remove_cgroups(self) -> None:
        for d in self._cgroup_dirs():
            if not d.exists():
                continue
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                d.rmdir()

    def _restore_host_state(self) -> None:
        if not self._host_state.exists():
            if not self.state_dir.exists():
                self.log(
                    f"{self.state_dir} is gone: the kernel settings the kubelet changed "
                    f"({', '.join(KUBELET_SYSCTLS)}) could not be put back"
                )
            return
        saved = json.loads(self._host_state.read_text())
        for key, value in saved["sysctls"].items():
            with contextlib.suppress(OSError):
                _sysctl_path(key).write_text(value)
        for path in saved["absent_paths"]:
            _run("rm", "-rf", "--one-file-system", path, check=False)
        self._host_state.unlink()
