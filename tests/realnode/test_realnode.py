"""The real node (``cluster up --nodes real``): real pods, exec and logs, Services
through kube-proxy, cluster DNS, real volumes, and the network-safety rule (nothing to
a pod or Service address may take the host's default route, at any moment); the last
test destroys the cluster and checks that nothing is left on the host.

Run alone: ``.venv/bin/pytest -m realnode`` (root; builds the kubelet, kube-proxy,
CoreDNS and the node images on first use).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tenantry_dev import provisioner, realnode
from tenantry_dev.cluster import LocalCluster, Ports
from tests.realnode.conftest import toolbox_pod, wait_ready
from tests.support.kube import Kube
from tests.support.realcluster import (
    POD_ADDRESS,
    SERVICE_ADDRESS,
    RealCluster,
    host_sysctls,
    netns_names,
)
from tests.support.wait import eventually, scaled

pytestmark = pytest.mark.realnode


def _namespace(kube: Kube) -> str:
    name = f"rn-{secrets.token_hex(3)}"
    kube.run("create", "namespace", name)
    return name


def _exec(kube: Kube, ns: str, pod: str, *argv: str) -> subprocess.CompletedProcess[str]:
    res = kube.try_run("-n", ns, "exec", pod, "--", *argv)
    return subprocess.CompletedProcess(argv, res.code, res.stdout, res.stderr)


# What `ip route get` answers for an address whose route is a blackhole (exit status 2).
BLACKHOLE_ANSWER = "RTNETLINK answers: Invalid argument"


def _default_gateway_used(route: dict[str, Any]) -> bool:
    """Whether an `ip route get` answer leaves through a default route's gateway. Only a
    blackhole is an answer that goes nowhere; any other failure of `ip route get` (no
    route, a wrong address, a missing tool) fails the test instead of passing it."""
    if "error" in route:
        assert route["error"] == BLACKHOLE_ANSWER, f"`ip route get` failed: {route}"
        return False
    if route.get("type") == "blackhole":
        return False
    out = subprocess.run(
        ["ip", "-j", "route", "show", "default"], capture_output=True, text=True, check=True
    ).stdout
    gateways = {r.get("gateway") for r in json.loads(out or "[]")} - {None}
    return route.get("gateway") in gateways or route.get("dev") in realnode.uplinks()


def test_the_node_is_ready_on_its_veth_address(real: RealCluster) -> None:
    node = real.kube.get("node", realnode.NODE_NAME)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == realnode.NODE_IP
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.4"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


def test_a_restricted_pod_of_a_local_image_runs_with_exec_and_logs(real: RealCluster) -> None:
    kube = real.kube
    ns = _namespace(kube)
    pod = toolbox_pod(
        "hello",
        ns,
        "echo hello-from-a-real-pod; exec sleep infinity",
        readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1},
    )
    kube.apply(pod)
    wait_ready(kube, ns, "hello")
    got = kube.get("-n", ns, "pod", "hello")
    assert got["status"]["phase"] == "Running"
    assert got["status"]["podIP"].startswith("10.244.0.")
    assert _exec(kube, ns, "hello", "id", "-u").stdout.strip() == "10001"
    # Read-only root, no capabilities: both really applied by runc.
    assert _exec(kube, ns, "hello", "touch", "/should-fail").returncode != 0
    caps = _exec(kube, ns, "hello", "grep", "CapEff", "/proc/self/status").stdout
    assert caps.split()[-1] == "0000000000000000"
    logs = kube.run("-n", ns, "logs", "hello")
    assert "hello-from-a-real-pod" in logs


def _web(kube: Kube, ns: str) -> str:
    """A tiny HTTP server pod behind the ClusterIP Service ``web``; its IP."""
    server = toolbox_pod(
        "web",
        ns,
        "echo served-through-a-service > /w/index.html; exec python3 -m http.server 8080 -d /w",
        volumeMounts=[{"name": "w", "mountPath": "/w"}],
        readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    )
    server["spec"]["volumes"] = [{"name": "w", "emptyDir": {}}]  # type: ignore[index]
    kube.apply(server)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    wait_ready(kube, ns, "web")
    ip: str = kube.get("-n", ns, "service", "web")["spec"]["clusterIP"]
    return ip


def _fetch(kube: Kube, ns: str, pod: str, url: str) -> str:
    code = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=3).read().decode())"
    )
    res = _exec(kube, ns, pod, "python3", "-c", code)
    return res.stdout.strip() if res.returncode == 0 else f"failed: {res.stderr.strip()}"


def test_a_clusterip_service_and_dns_work_from_another_pod(real: RealCluster) -> None:
    kube = real.kube
    ns = _namespace(kube)
    service_ip = _web(kube, ns)
    kube.apply(toolbox_pod("client", ns, "exec sleep infinity"))
    wait_ready(kube, ns, "client")
    eventually(
        lambda: _fetch(kube, ns, "client", f"http://{service_ip}/"),
        accept=lambda body: body == "served-through-a-service",
        timeout=60,
        what="the Service's ClusterIP answering through kube-proxy",
    )
    # Cluster DNS: the API server's Service, and this Service by its short and full name.
    api = _exec(kube, ns, "client", "getent", "hosts", "kubernetes.default.svc.cluster.local")
    assert api.stdout.split()[:1] == ["10.96.0.1"], api
    short = _exec(kube, ns, "client", "getent", "hosts", "web")
    assert short.stdout.split()[:1] == [service_ip], short
    assert _fetch(kube, ns, "client", f"http://web.{ns}.svc.cluster.local/") == (
        "served-through-a-service"
    )
    # No upstream resolver: a name outside the cluster does not resolve.
    assert _exec(kube, ns, "client", "getent", "hosts", "example.com").returncode != 0


def _claim(kube: Kube, ns: str, name: str, size: str, cls: str = "standard") -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "storageClassName": cls,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        }
    )


def _volume_pod(kube: Kube, ns: str, name: str, claim: str, command: str) -> None:
    pod = toolbox_pod(name, ns, command, volumeMounts=[{"name": "data", "mountPath": "/data"}])
    pod["spec"]["volumes"] = [  # type: ignore[index]
        {"name": "data", "persistentVolumeClaim": {"claimName": claim}}
    ]
    kube.apply(pod)
    wait_ready(kube, ns, name)


def _volume_dir(real: RealCluster, ns: str, claim: str) -> Path:
    pvc = real.kube.get("-n", ns, "pvc", claim)
    path = Path(real.kube.get("pv", pvc["spec"]["volumeName"])["spec"]["hostPath"]["path"])
    assert path.parent == real.cluster.real_node.volumes_dir
    return path


def test_volume_data_survives_the_pod_and_lives_under_the_state_dir(real: RealCluster) -> None:
    kube = real.kube
    ns = _namespace(kube)
    _claim(kube, ns, "data", "100Mi")
    token = secrets.token_hex(8)
    _volume_pod(kube, ns, "writer", "data", f"echo {token} > /data/token; exec sleep infinity")
    path = _volume_dir(real, ns, "data")
    assert (path / "token").read_text().strip() == token
    kube.run("-n", ns, "delete", "pod", "writer", "--wait=true")
    _volume_pod(kube, ns, "reader", "data", "exec sleep infinity")
    assert _exec(kube, ns, "reader", "cat", "/data/token").stdout.strip() == token


def test_a_claim_grows(real: RealCluster) -> None:
    kube = real.kube
    ns = _namespace(kube)
    _claim(kube, ns, "grow", "100Mi")
    _volume_pod(kube, ns, "user", "grow", "exec sleep infinity")
    kube.run(
        "-n",
        ns,
        "patch",
        "pvc",
        "grow",
        "-p",
        json.dumps({"spec": {"resources": {"requests": {"storage": "300Mi"}}}}),
    )
    eventually(
        lambda: kube.get("-n", ns, "pvc", "grow")["status"].get("capacity", {}).get("storage"),
        accept=lambda size: size == "300Mi",
        timeout=60,
        what="the claim's capacity after expansion",
    )
    pv = kube.get("pv", kube.get("-n", ns, "pvc", "grow")["spec"]["volumeName"])
    assert pv["spec"]["capacity"]["storage"] == "300Mi"


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_reclaim_policy_keeps_or_removes_the_directory(real: RealCluster, policy: str) -> None:
    kube = real.kube
    ns = _namespace(kube)
    cls = f"local-{policy.lower()}-{secrets.token_hex(2)}"
    kube.apply(
        {
            **provisioner.storage_class(),
            "metadata": {"name": cls},
            "reclaimPolicy": policy,
        }
    )
    _claim(kube, ns, "vol", "50Mi", cls)
    _volume_pod(kube, ns, "user", "vol", "echo kept > /data/f; exec sleep infinity")
    path = _volume_dir(real, ns, "vol")
    pv_name = kube.get("-n", ns, "pvc", "vol")["spec"]["volumeName"]
    assert (path / "f").read_text().strip() == "kept"
    kube.run("-n", ns, "delete", "pod", "user", "--wait=true")
    kube.run("-n", ns, "delete", "pvc", "vol", "--wait=true")
    if policy == "Retain":
        eventually(
            lambda: kube.get("pv", pv_name)["status"]["phase"],
            accept=lambda phase: phase == "Released",
            timeout=60,
            what="the retained volume Released",
        )
        assert (path / "f").read_text().strip() == "kept"
    else:
        eventually(
            lambda: (kube.get_or_none("pv", pv_name), path.exists()),
            accept=lambda state: state == (None, False),
            timeout=60,
            what="the volume and its directory deleted",
        )


def test_a_second_real_node_cluster_is_refused_and_leaves_the_first_alone(
    real: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = LocalCluster(
        tmp_path_factory.mktemp("second"), ports=Ports.free(), node_kind="real", tied=True
    )
    with pytest.raises(RuntimeError, match=r"another real-node cluster .* still runs"):
        other.up(timeout=60)
    other.destroy()  # what a fixture does after a failed up: must not touch the first
    assert realnode.netns_exists()
    node = real.kube.get("node", realnode.NODE_NAME)
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    ns = _namespace(real.kube)
    real.kube.apply(toolbox_pod("still", ns, "exec sleep infinity"))
    wait_ready(real.kube, ns, "still")


def test_pod_and_service_addresses_never_take_the_default_route(real: RealCluster) -> None:
    # Recorded by the fixture as each process started: the routes came first.
    assert real.routes_at_start, "the fixture saw no process start"
    assert real.routes_at_start[0][0].startswith("started etcd")
    for started, routes in real.routes_at_start:
        for address, route in routes.items():
            assert not _default_gateway_used(route), (started, address, route)
    # And now, with pods running: a real pod address and the API server's Service.
    kube = real.kube
    pods = kube.get("pods", "-A")["items"]
    pod_ips = [p["status"]["podIP"] for p in pods if p["status"].get("podIP")]
    assert pod_ips, "no pod has an address"
    for address in (*pod_ips[:3], "10.96.0.1", realnode.CLUSTER_DNS, POD_ADDRESS, SERVICE_ADDRESS):
        route = realnode.route_via(address)
        assert not _default_gateway_used(route), (address, route)
    for cidr in (realnode.POD_CIDR, "10.96.0.0/16"):
        shown = subprocess.run(
            ["ip", "route", "show", "exact", cidr], capture_output=True, text=True, check=True
        ).stdout
        assert shown.startswith("blackhole"), (cidr, shown)


def _host_traces(state_dir: Path) -> dict[str, object]:
    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    sock = str(state_dir).encode()
    procs = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and sock in (proc / "cmdline").read_bytes():
                procs.append(proc.name)
        except OSError:
            continue
    return {
        "processes": procs,
        "netns": realnode.NETNS in run("ip", "netns", "list"),
        "veth": realnode.VETH_HOST in run("ip", "-br", "link"),
        "nft": realnode.NFT_HOST_TABLE in run("nft", "list", "tables"),
        "routes": [
            c for c in (realnode.POD_CIDR, "10.96.0.0/16") if run("ip", "route", "show", "exact", c)
        ],
        "mounts": str(state_dir) in Path("/proc/self/mountinfo").read_text(),
        "cgroups": [str(d) for d in realnode.RealNode._cgroup_dirs() if d.exists()],
        "state_dir": state_dir.exists(),
    }


def _kill_daemons_of(state_dir: Path) -> None:
    """What a killed test run (the daemons are tied to it) or a stopped session leaves:
    the cluster's daemons SIGKILLed, no ``down``; the shims and pods may run on."""
    for _ in range(100):
        alive = realnode.daemons(state_dir)
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    raise AssertionError(f"still running: {realnode.daemons(state_dir)}")


def test_zy_a_cluster_killed_without_down_is_reclaimed_by_the_next_up(
    real: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Second to last: kills the session's cluster (its host resources stay behind), then
    a new cluster must come up in their place and leave the host as it was."""
    old = real.cluster.state_dir
    pids = json.loads((old / "pids.json").read_text())
    # What makes a later `down` safe: each recorded PID is known by its working directory.
    assert all(realnode.runs_in(pid, old) for pid in pids.values()), pids
    assert set(pids.values()) <= set(realnode.daemons(old))
    _kill_daemons_of(old)
    assert realnode.holders(old), "no shim or pod ran on: the test shows less than it says"
    assert realnode.netns_exists()
    assert realnode.OWNER_FILE.read_text().strip() == str(old)

    lines: list[str] = []
    other = LocalCluster(
        tmp_path_factory.mktemp("next"),
        ports=Ports.free(),
        node_kind="real",
        log=lines.append,
        tied=True,
    )
    try:
        other.up(timeout=scaled(180))
        assert any("left the netns" in line for line in lines), lines
        kube = Kube(kubeconfig=other.kubeconfig, kubectl=real.kube.kubectl)
        node = kube.get("node", realnode.NODE_NAME)
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
        assert realnode.OWNER_FILE.read_text().strip() == str(other.state_dir)
        # Nothing of the killed cluster is left mounted or running (the node's cgroups
        # now hold the new cluster's pods).
        left = _host_traces(old)
        assert (left["mounts"], left["processes"]) == (False, [])
        # Its images and snapshots are gone (gigabytes); its volumes (tenant data) stay.
        assert not (old / "node" / "containerd").exists()
        assert (old / "volumes").is_dir()
    finally:
        other.destroy()
    assert _host_traces(other.state_dir) == NOTHING
    assert realnode.holders(old) == []
    assert host_sysctls() == real.sysctls_before


NOTHING = {
    "processes": [],
    "netns": False,
    "veth": False,
    "nft": False,
    "routes": [],
    "mounts": False,
    "cgroups": [],
    "state_dir": False,
}


def test_zz_destroy_leaves_nothing_behind(real: RealCluster) -> None:
    """Last in this module: destroys the session's cluster (the fixture's own destroy is
    then a no-op) and checks the host is as it was (also after the test above, whose new
    cluster already undid this one's host changes: destroy is then safe and idempotent)."""
    real.cluster.destroy()
    assert _host_traces(real.cluster.state_dir) == NOTHING
    # The pods' netns are gone too (other work on the machine may add netns of its own).
    ours = {n for n in netns_names() if n.startswith("cni-") or n == realnode.NETNS}
    assert ours <= real.netns_before
    assert host_sysctls() == real.sysctls_before
    for path in real.absent_before:
        assert not Path(path).exists(), path
