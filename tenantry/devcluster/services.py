"""Start real PostgreSQL 15 and Redis 7 processes on loopback (local runs and tests).

Both run on loopback on free ports with data in a folder of the caller's. ``initdb`` refuses
to run as root, so when the tests run as root the server runs as the ``postgres``
user (through ``runuser``) in a folder that user owns.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class Postgres:
    folder: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, folder: Path) -> Postgres:
        """Start a server on ``folder`` (initialised on first use, reused afterwards)."""
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 is missing: run `bash scripts/bootstrap.sh`")
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        data = folder / "data"
        if not (data / "PG_VERSION").exists():
            cls._initdb(data)
        port = free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(folder / "pg.log"),
                    "-w",
                    "-o",
                    opts,
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return cls(folder, port)

    @staticmethod
    def _initdb(data: Path) -> None:
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"]
            ),
            check=False,
            capture_output=True,
        )


@dataclass
class RedisServer:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, folder: Path) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: run `bash scripts/bootstrap.sh`")
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(folder),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return cls(folder, port, proc)
            except OSError:
                time.sleep(0.02)
        proc.kill()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve_controlplane(
    *,
    env: dict[str, str],
    port: int,
    log: Path | None = None,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    timeout: float = 60,
) -> subprocess.Popen[bytes]:
    """`tenantry controlplane serve` on loopback, returned once it answers /readyz.

    Output goes to ``log`` (a file, not a pipe: an undrained pipe blocks the server) or
    nowhere. The caller stops the process."""
    import sys
    import urllib.request

    args = [sys.executable, "-m", "tenantry.cli", "controlplane", "serve", "--port", str(port)]
    args += ["--workers", str(workers), *extra_args]
    with log.open("wb") if log else open(os.devnull, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log.read_text()[-3000:] if log else "(no log)"
            raise RuntimeError(f"the control plane did not start:\n{tail}")
        time.sleep(0.1)
