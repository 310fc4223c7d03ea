"""A ClickHouse-HTTP endpoint on loopback whose queries run on chDB: a stand-in.

Deployments reach ClickHouse with clickhouse-connect over HTTP, and that adapter must be
exercised for real, but no modern ClickHouse server can be installed on our machines.
This server binds loopback only (no TLS; tests and local runs) and serves ClickHouse's
HTTP interface with ``standins.clickhouse_http`` (what it implements and its limits are
written there): every statement runs on the real engine, chDB, over one data directory;
the users are a dict of plain passwords given at start (``users``, changeable while it
runs). The ClickHouse stand-in *image* (``standins.clickhouse``) serves the same
interface from a pod's mounted config tree instead.

One engine per process and one process per data directory (chDB's rules): run it
in-process over the data directory the process already uses, or as a subprocess
(``python -m tenantry_dev.loopback_server --path DIR``).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from standins.clickhouse_http import Engine, Passwords, handler_class


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackServer:
    """The endpoint: `start()` serves in a daemon thread, `close()` stops it."""

    def __init__(
        self,
        path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the loopback server binds loopback addresses only, not {host!r}")
        data = Path(path).resolve()
        data.mkdir(parents=True, exist_ok=True)
        self.path = str(data)
        # A server config (config.d merged) the engine loads at start: macros, clusters.
        dsn = (
            f"file:{self.path}?config-file={Path(config_file).resolve()}"
            if config_file
            else self.path
        )
        self.users = Passwords(users if users is not None else {"default": ""})
        self.engine = Engine(dsn, authenticator=self.users)
        handler = handler_class(self.engine, server_version="tenantry-loopback-clickhouse")
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="clickhouse-loopback", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()
        self.engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", required=True, help="chDB data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--config-file", help="server config.xml (its config.d is merged)")
    args = parser.parse_args(argv)
    server = LoopbackServer(
        args.path,
        host=args.host,
        port=args.port,
        users={args.user: args.password},
        config_file=args.config_file,
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server._httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening {server.url} engine {server.engine.version}", flush=True)
    try:
        server.serve_forever()
    finally:
        server._httpd.server_close()
        server.engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
