"""The Keeper stand-in: Apache ZooKeeper (Debian's ``zookeeper`` package) configured
from the ClickHouse Keeper config the operator renders. A stand-in, not ClickHouse
Keeper: no ClickHouse Keeper can be installed on our machines, and ZooKeeper speaks the
protocol ClickHouse's Keeper client uses (Keeper was made to be its drop-in). It runs in
the Keeper stand-in image only (``images/keeper-standin``); production keeps the
official clickhouse-keeper image.

Started as the StatefulSet starts clickhouse-keeper (the image puts this behind
``clickhouse-keeper`` on PATH; the pod's command sets ``KEEPER_SERVER_ID`` from its
ordinal)::

    clickhouse-keeper --config-file=/etc/clickhouse-keeper/keeper_server.xml

It reads the file as ClickHouse does (``keeper_server.xml.d``/``conf.d`` merged,
``from_env`` substituted: ``standins.config``) and translates
``<keeper_server>`` into a ``zoo.cfg`` under ``$TMPDIR`` (the pod's ``/tmp``):

=====================================  ==================================================
Keeper                                 ZooKeeper
=====================================  ==================================================
``tcp_port`` (9181)                    ``clientPort``: the port the probes and clients use
``server_id``                          ``myid`` in the data directory
``raft_configuration/server``          ``server.<id>=<hostname>:<port>:<port + 1>``: the
(id, hostname, port 9234)              quorum port is Keeper's raft port; ZooKeeper also
                                       needs a leader-election port, the next one (the
                                       tenant's NetworkPolicies allow every port between
                                       its own pods); one server: standalone
``snapshot_storage_path``              ``dataDir`` (snapshots, ``myid``)
``log_storage_path``                   ``dataLogDir`` (the transaction log)
``coordination_settings/               ``maxSessionTimeout`` (at least it), ``tickTime``
session_timeout_ms``                   2000 ms
=====================================  ==================================================

Four-letter-word commands are whitelisted as ClickHouse Keeper answers them (``ruok``,
``mntr``, ``srvr``, ``stat``, ``conf``, ``isro``, ``envi``), and the admin HTTP server is
off. The rendered probes are ``tcpSocket`` on the client port, which ZooKeeper answers
once it listens. Not translated: ``<prometheus>`` (ZooKeeper serves no metrics here, so
nothing listens on the metrics port) and the Raft tuning of ``coordination_settings``.
A config it cannot translate (no ``tcp_port``, a ``server_id`` that is not an integer or
not in ``raft_configuration``, a non-integer port) stops the start with exit 1 and the
element named.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from standins.config import ConfigError, merged

JAVA = "/usr/bin/java"
CLASSPATH = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar")
MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
FOUR_LETTER_WORDS = ("ruok", "mntr", "srvr", "stat", "conf", "isro", "envi")
TICK_MS = 2000


@dataclass(frozen=True)
class Server:
    id: int
    host: str
    port: int


@dataclass(frozen=True)
class KeeperConfig:
    """What the stand-in takes from ``<keeper_server>``."""

    client_port: int
    server_id: int
    servers: tuple[Server, ...]
    data_dir: str
    log_dir: str
    session_timeout_ms: int


def _int(element: ET.Element, path: str, *, default: int | None = None) -> int:
    text = element.findtext(path)
    if text is None or not text.strip():
        if default is None:
            raise ConfigError(f"<keeper_server><{path}> is not set")
        return default
    if not text.strip().isdigit():
        raise ConfigError(f"<keeper_server><{path}>: {text.strip()!r} is not an integer")
    return int(text.strip())


def keeper_config(root: ET.Element) -> KeeperConfig:
    """The translation's input from a merged Keeper config; ConfigError names what is
    missing or wrong."""
    keeper = root.find("keeper_server")
    if keeper is None:
        raise ConfigError("no <keeper_server> section")
    client_port = _int(keeper, "tcp_port")
    if not 0 < client_port < 65536:
        raise ConfigError(f"<keeper_server><tcp_port>: {client_port} is not a port number")
    server_id = _int(keeper, "server_id")
    servers = []
    for element in keeper.findall("raft_configuration/server"):
        port = _int(element, "port")
        servers.append(
            Server(_int(element, "id"), (element.findtext("hostname") or "").strip(), port)
        )
    if not servers:
        raise ConfigError("<raft_configuration> lists no server")
    ids = [s.id for s in servers]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"<raft_configuration>: server ids repeat: {ids}")
    if server_id not in ids:
        raise ConfigError(f"<server_id> {server_id} is not in <raft_configuration> ({ids})")
    for s in servers:
        if not s.host or not 0 < s.port < 65535:
            raise ConfigError(f"<raft_configuration> server {s.id}: bad hostname or port")
    base = (root.findtext("path") or "/var/lib/clickhouse-keeper").strip()
    return KeeperConfig(
        client_port=client_port,
        server_id=server_id,
        servers=tuple(servers),
        data_dir=(keeper.findtext("snapshot_storage_path") or f"{base}/snapshots").strip(),
        log_dir=(keeper.findtext("log_storage_path") or f"{base}/logs").strip(),
        session_timeout_ms=_int(keeper, "coordination_settings/session_timeout_ms", default=30000),
    )


def zoo_cfg(config: KeeperConfig) -> str:
    """The ``zoo.cfg`` that runs ZooKeeper the way the Keeper config describes."""
    lines = [
        "# Written by the Keeper stand-in (standins/keeper.py) from keeper_server.xml.",
        f"tickTime={TICK_MS}",
        "initLimit=10",
        "syncLimit=5",
        f"dataDir={config.data_dir}",
        f"dataLogDir={config.log_dir}",
        f"clientPort={config.client_port}",
        f"maxSessionTimeout={max(config.session_timeout_ms, 20 * TICK_MS)}",
        "admin.enableServer=false",
        f"4lw.commands.whitelist={','.join(FOUR_LETTER_WORDS)}",
        "standaloneEnabled=true",
        "quorumListenOnAllIPs=true",
        "autopurge.snapRetainCount=3",
        "autopurge.purgeInterval=1",
    ]
    if len(config.servers) > 1:
        lines += [f"server.{s.id}={s.host}:{s.port}:{s.port + 1}" for s in config.servers]
    return "\n".join(lines) + "\n"


def prepare(config_file: Path, work_dir: Path) -> list[str]:
    """Write zoo.cfg (in ``work_dir``) and ``myid`` (in the data directory); return the
    command that runs ZooKeeper on them."""
    config = keeper_config(merged(config_file))
    for folder in (config.data_dir, config.log_dir):
        Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(config.data_dir) / "myid").write_text(f"{config.server_id}\n")
    cfg = work_dir / "zoo.cfg"
    cfg.write_text(zoo_cfg(config))
    heap = os.environ.get("KEEPER_STANDIN_HEAP", "256m")
    return [
        JAVA,
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-Dzookeeper.jmx.log4j.disable=true",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-cp",
        ":".join(CLASSPATH),
        MAIN,
        str(cfg),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="clickhouse-keeper",
        description="Keeper stand-in: Apache ZooKeeper configured from a ClickHouse Keeper "
        "config (not ClickHouse Keeper; see standins/keeper.py)",
    )
    parser.add_argument("--config-file", "-C", required=True, type=Path)
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the zoo.cfg it would run and exit (writes nothing)",
    )
    args, _rest = parser.parse_known_args(argv)
    try:
        if args.print_config:  # nothing written
            print(zoo_cfg(keeper_config(merged(args.config_file.absolute()))), end="")
            return 0
        work_dir = Path(tempfile.mkdtemp(prefix="keeper-standin-"))
        command = prepare(args.config_file.absolute(), work_dir)
    except (ConfigError, OSError) as exc:
        print(f"keeper stand-in: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"keeper stand-in: exec ZooKeeper on {work_dir / 'zoo.cfg'}", flush=True)
    os.execv(command[0], command)  # noqa: S606 - a fixed program, arguments built here
    return 1  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main())
