"""The Keeper stand-in (``standins.keeper``: Apache ZooKeeper) started from the Keeper
config the operator's own builders render, by the command the StatefulSet renders.

The rendered container command runs as it is (server id from the pod's hostname, then
``clickhouse-keeper --config-file=...``, here the image's wrapper), in namespaces of its
own; only the config file's path is moved under the test's root. It answers the rendered
probes, the four-letter words ClickHouse Keeper answers, and a real ZooKeeper client
(Debian's ``zkCli.sh``) creates and reads a znode through it. A config it cannot run
stops the start with the element named.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tenantry_operator import builders
from tenantry_operator.builders import keeper as keeper_builder
from tenantry_operator.normalize import tenant_model

from tests.support import chconfig
from tests.support import standins as support
from tests.support.wait import eventually, scaled, stop_process

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def rendered(keeper_replicas: int) -> list[dict[str, Any]]:
    spec = {"clickhouse": {"replicas": 2}, "keeper": {"replicas": keeper_replicas}}
    return builders.build(tenant_model({"metadata": {"name": "acme"}, "spec": spec}))


def keeper_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (sts,) = [
        o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "keeper"
    ]
    (found,) = sts["spec"]["template"]["spec"]["containers"]
    return dict(found)


def lay_out(objects: list[dict[str, Any]], root: Path) -> list[str]:
    """Write the Keeper ConfigMap's files under ``root``; return the rendered command with
    the config file's path moved under ``root`` (nothing else changed)."""
    files, config_file = chconfig.keeper_files(objects)
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    spec = keeper_container(objects)
    command = [*spec["command"], *spec["args"]]
    moved = str(root / config_file.lstrip("/"))
    assert sum(config_file in part for part in command) == 1, command
    return [part.replace(config_file, moved) for part in command]


@dataclass
class Running:
    proc: subprocess.Popen[str]
    objects: list[dict[str, Any]]
    root: Path

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return support.in_netns(self.proc.pid, argv, timeout=scaled(timeout))

    def word(self, port: int, word: str) -> str:
        done = self.run(["python3", "-c", support.FOUR_LETTER, str(port), word])
        assert done.returncode == 0, done.stderr
        return done.stdout


def start(objects: list[dict[str, Any]], root: Path, hostname: str) -> subprocess.Popen[str]:
    command = lay_out(objects, root)
    env = {
        "HOSTNAME": hostname,
        "PATH": f"{support.KEEPER_BIN}:{os.environ['PATH']}",
        "TMPDIR": str(root / "tmp"),
    }
    (root / "tmp").mkdir(exist_ok=True)
    return support.spawn(command, var_lib=root / "var/lib", env=env, log=root / "stderr.log")


@pytest.fixture(scope="module")
def keeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("keeper-standin")
    objects = rendered(keeper_replicas=1)
    proc = start(objects, root, hostname="keeper-0")
    running = Running(proc=proc, objects=objects, root=root)
    try:
        eventually(
            lambda: proc.poll() is not None or running.word(keeper_builder.CLIENT_PORT, "ruok"),
            what="the Keeper stand-in answering ruok",
            timeout=90,
            ignore=(AssertionError,),
        )
        assert proc.poll() is None, (root / "stderr.log").read_text()[-3000:]
        yield running
    finally:
        stop_process(proc, what="keeper stand-in")


def test_answers_the_rendered_probes(keeper: Running) -> None:
    spec = keeper_container(keeper.objects)
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    probes = [spec["readinessProbe"], spec["livenessProbe"]]
    assert all("tcpSocket" in p for p in probes), probes
    for probe in probes:
        port = ports[probe["tcpSocket"]["port"]]
        assert port == keeper_builder.CLIENT_PORT
        assert keeper.word(port, "-") == ""  # the connection is accepted: the probe passes


def test_answers_four_letter_words_as_keeper_does(keeper: Running) -> None:
    port = keeper_builder.CLIENT_PORT
    assert keeper.word(port, "ruok") == "imok"
    assert "Mode: standalone" in keeper.word(port, "srvr")
    mntr = dict(
        line.split("\t", 1) for line in keeper.word(port, "mntr").splitlines() if "\t" in line
    )
    assert mntr["zk_server_state"] == "standalone"


def test_a_zookeeper_client_writes_and_reads_a_znode(keeper: Running) -> None:
    server = f"127.0.0.1:{keeper_builder.CLIENT_PORT}"
    created = keeper.run([ZKCLI, "-server", server, "create", "/standin", "from-the-test"])
    assert "Created /standin" in created.stdout + created.stderr, created.stdout + created.stderr
    read = keeper.run([ZKCLI, "-server", server, "get", "/standin"])
    assert "from-the-test" in read.stdout, read.stdout + read.stderr
    # on the data volume the rendered config names, with the server id from the hostname
    data = keeper.root / "var/lib/clickhouse-keeper/coordination"
    assert (data / "snapshots" / "myid").read_text().strip() == "1"
    assert any((data / "log").rglob("log.*"))


def print_config(
    tmp_path: Path, objects: list[dict[str, Any]], server_id: str
) -> subprocess.CompletedProcess[str]:
    """The zoo.cfg the stand-in makes of the rendered config for a node (writes nothing)."""
    files, config_file = chconfig.keeper_files(objects)
    for path, text in files.items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_text(text)
    return subprocess.run(
        [
            str(support.KEEPER_BIN / "clickhouse-keeper"),
            f"--config-file={tmp_path}{config_file}",
            "--print-config",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "KEEPER_SERVER_ID": server_id, "STANDINS_PYTHON": sys.executable},
        check=False,
        timeout=scaled(60),
    )


def test_an_ensemble_node_gets_the_rendered_peers_and_ports(tmp_path: Path) -> None:
    model = tenant_model(
        {
            "metadata": {"name": "acme"},
            "spec": {"clickhouse": {"replicas": 2}, "keeper": {"replicas": 3}},
        }
    )
    done = print_config(tmp_path, builders.build(model), "2")
    assert done.returncode == 0, done.stderr
    lines = set(done.stdout.splitlines())
    raft = keeper_builder.RAFT_PORT
    assert {
        f"server.{i + 1}={host}:{raft}:{raft + 1}"
        for i, host in enumerate(keeper_builder.node_hosts(model))
    } <= lines
    assert f"clientPort={keeper_builder.CLIENT_PORT}" in lines
    assert "dataDir=/var/lib/clickhouse-keeper/coordination/snapshots" in lines


def test_a_server_id_outside_the_ensemble_stops_the_start(tmp_path: Path) -> None:
    done = print_config(tmp_path, rendered(keeper_replicas=3), "4")
    assert done.returncode == 1
    assert "<server_id> 4 is not in <raft_configuration> ([1, 2, 3])" in done.stderr
