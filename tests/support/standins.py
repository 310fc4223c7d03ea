"""Run the stand-in servers (``standins/``) as host processes the way their pods run them.

Each stand-in runs in network and mount namespaces of its own (``unshare
--map-root-user --mount --net``, loopback only): the config trees name cluster DNS
hosts, and resolving one must never send a packet off this machine (the network rule);
inside, it fails at once. The tree the operator renders is laid out under a temporary
root (``tests.support.chconfig``) and its ``/var/lib`` is bound over ``/var/lib``, so
the config is loaded unchanged.

How a test reaches a server in its own namespace:

- the ClickHouse stand-in gets a listening socket made here, on loopback in the host
  namespace (``--listen-fd``, socket activation): clients in this process
  (clickhouse-connect, the operator's schema code) connect to it;
- ZooKeeper (Java) binds its own sockets, so its clients run inside its namespace
  (``in_netns``: ``nsenter --net``, which needs root, as the image pipeline does).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def hosts_file(root: Path, names: Sequence[str]) -> Path:
    path = root / "etc-hosts"
    path.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {n}\n" for n in names))
    return path


REPO = Path(__file__).resolve().parents[2]
# The images' entry points, run here as they run in the images (with this venv's Python).
CLICKHOUSE_SERVER = REPO / "images" / "clickhouse-standin" / "bin" / "clickhouse-server"
KEEPER_BIN = REPO / "images" / "keeper-standin" / "bin"


def spawn(
    argv: Sequence[str],
    *,
    var_lib: Path,
    env: Mapping[str, str],
    log: Path,
    binds: Mapping[Path, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[str]:
    """Start ``argv`` in new network and mount namespaces, ``var_lib`` bound over
    /var/lib and each of ``binds`` (host path -> path inside) bound too; stdout is a
    pipe, stderr goes to ``log``. The stand-ins' wrappers run with this venv's Python."""
    var_lib.mkdir(parents=True, exist_ok=True)
    mounts = {var_lib: "/var/lib", **(binds or {})}
    script = "ip link set lo up"
    args: list[str] = []
    for source, target in mounts.items():
        script += f' && mount --bind "${len(args) + 1}" "${len(args) + 2}"'
        args += [str(source), target]
    command = [
        "unshare",
        "--map-root-user",
        "--mount",
        "--net",
        "sh",
        "-c",
        f'{script} && shift {len(args)} && exec "$@"',
        "sh",
        *args,
        *argv,
    ]
    child_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "KEEPER_"))
    }
    child_env["STANDINS_PYTHON"] = sys.executable
    child_env.update(env)
    with log.open("w") as err:
        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=err,
            env=child_env,
            text=True,
            pass_fds=tuple(pass_fds),
        )


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def clickhouse_argv(config_file: Path, listen_fd: int | None) -> list[str]:
    """The stand-in's command through the image's /usr/bin/clickhouse-server."""
    argv = [str(CLICKHOUSE_SERVER), f"--config-file={config_file}"]
    return argv + ([f"--listen-fd={listen_fd}"] if listen_fd is not None else [])


def in_netns(pid: int, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the network namespace of process ``pid``."""
    return subprocess.run(
        ["nsenter", f"--target={pid}", "--net", "--", *argv],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


# A client for ZooKeeper's four-letter words and plain TCP probes, run in the namespace.
FOUR_LETTER = r"""
import socket, sys
port, word = int(sys.argv[1]), sys.argv[2]
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    if word != "-":
        s.sendall(word.encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        sys.stdout.write(data.decode())
"""
