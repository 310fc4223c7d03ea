"""The ClickHouse stand-in server: the ClickHouse engine (chDB) started from a pod's
mounted config tree exactly as clickhouse-server would be, serving ClickHouse's HTTP
interface. A stand-in, not ClickHouse: no modern ClickHouse server can be installed on
our machines, and chDB has no server entry point. It runs in the ClickHouse stand-in
image only (``images/clickhouse-standin``), never in the runtime image, and production
keeps the official clickhouse-server image.

Started as the StatefulSet starts clickhouse-server (the image puts this behind
``/usr/bin/clickhouse-server``)::

    clickhouse-server --config-file=/etc/clickhouse-server/config.xml

What it does, in order:

1. reads the config tree as ClickHouse's ConfigProcessor does: ``config.xml`` with
   ``config.d/*.xml`` and ``conf.d/*.xml`` merged in name order (``replace``/``remove``
   attributes, ``from_env`` substitution), and the users file (``user_directories/
   users_xml/path``, else ``users_config``, else ``users.xml``) with its ``users.d``;
   a file that is not well-formed XML, or a port (any top-level ``*_port``) that is not
   an integer from 0 to 65535, stops the start with the file or element named and exit 1;
2. starts the engine on the same tree, ``chdb.connect("file:<path>?config-file=
   <config.xml>")``: the engine itself merges config.d and users.d (macros,
   remote_servers, users, profiles, quotas) and refuses what a server refuses (an
   unknown profile, a shard with no replicas ...): exit 1 with its reason;
3. serves HTTP on ``http_port`` of every ``listen_host`` (``standins.clickhouse_http``):
   queries, ``/ping`` (the StatefulSet's startup, readiness and liveness probes) and
   ``/`` (``Ok.``).

Users and what is enforced. chDB runs every query as its own ``default`` user, so the
stand-in enforces what it can itself, and says so:

- authentication: each request's user (Basic auth, ``X-ClickHouse-User``/``-Key``,
  ``user``/``password`` parameters) must be a user of the merged users file, with its
  password (``password``, plain or ``from_env``, or ``password_sha256_hex``;
  ``no_password``) and from one of its ``networks``/``ip`` (``host``/``host_regexp``
  entries are not resolved: such a user is refused from anywhere they would be needed);
  else 516 AUTHENTICATION_FAILED, as ClickHouse answers;
- the user's settings profile: every setting the engine resolves for the profile
  (``SETTINGS profile = '<p>'``, inheritance included) is SET on the request's
  connection before the request's own settings, ``readonly`` last, and ``SET profile``
  carries its constraints: the engine itself then refuses a write by a ``readonly``
  user (164 READONLY) and a setting outside the profile's constraints;
- NOT enforced: grants (``<grants>``), quotas and row policies (chDB runs every query
  as ``default``, which holds every right, and cannot switch user). A ``writer`` can
  read here, though not on ClickHouse. Tests of rights use the engine directly with the
  user's own element as ``default`` (``tests/support/chconfig.as_user``).

What works and what does not, compared with clickhouse-server:

- no native protocol (``tcp_port``, 9000) and no interserver HTTP (9009), no
  Prometheus endpoint: nothing listens there. A one-host tenant (1 shard x 1 replica,
  the default) has no Distributed table and no Keeper, and works fully. On one host of
  N shards x 1 replica (tested: ``tests/integration/standins``), the operator's schema
  step works, the host's own shard is local (``is_local`` once its name resolves to
  itself, as a pod's does), an insert through ``events`` stores this shard's rows and
  queues the others' for a native-protocol connection that never succeeds, and reading
  through ``events`` fails (279 ALL_CONNECTION_TRIES_FAILED) unless
  ``skip_unavailable_shards`` reads this shard only. Layouts with replicas need Keeper
  and replication between hosts (interserver HTTP), which the stand-in cannot give.
- one engine per process and one process per data directory (chDB's rules): one
  stand-in per pod, as one server per pod.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import logging
import signal
import socket
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from standins import clickhouse_http as ch
from standins.config import ConfigError, merged

logger = logging.getLogger("clickhouse-standin")

SERVER_VERSION = "tenantry-clickhouse-standin"


def users_file(config: ET.Element, config_file: Path) -> Path:
    """The users file the server reads (relative paths: next to config.xml)."""
    path = config.findtext("user_directories/users_xml/path") or config.findtext("users_config")
    found = Path((path or "users.xml").strip())
    return found if found.is_absolute() else config_file.parent / found


def check_ports(config: ET.Element) -> dict[str, int]:
    """Every top-level ``*_port`` as an integer, or ConfigError naming the element."""
    ports: dict[str, int] = {}
    for node in config:
        if isinstance(node.tag, str) and node.tag.endswith("_port"):
            text = (node.text or "").strip()
            if not text.isdigit() or int(text) > 65535:
                raise ConfigError(f"<{node.tag}>: {text!r} is not a port number (0-65535)")
            ports[node.tag] = int(text)
    prometheus = config.findtext("prometheus/port")
    if prometheus is not None and not prometheus.strip().isdigit():
        raise ConfigError(f"<prometheus><port>: {prometheus.strip()!r} is not a port number")
    return ports


# -- users -----------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """One user of the users file: how it proves itself, from where, its profile."""

    name: str
    password: str | None
    sha256_hex: str | None
    no_password: bool
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    profile: str

    def accepts(self, password: str) -> bool:
        if self.no_password:
            return password == ""
        if self.sha256_hex is not None:
            digest = hashlib.sha256(password.encode()).hexdigest()
            return hmac.compare_digest(digest, self.sha256_hex.lower())
        if self.password is not None:
            return hmac.compare_digest(self.password.encode(), password.encode())
        return False

    def allows(self, client: str) -> bool:
        """Whether `client` is in one of the user's networks. As in ClickHouse, an IPv6
        network holds the IPv4 addresses mapped into it (``::/0`` is everyone)."""
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
        if isinstance(address, ipaddress.IPv4Address):
            forms.append(ipaddress.IPv6Address(f"::ffff:{address}"))
        elif address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        return any(a in n for n in self.networks for a in forms if a.version == n.version)


_PASSWORD_KINDS = ("password", "password_sha256_hex", "no_password")
_UNSUPPORTED_AUTH = ("password_double_sha1_hex", "ldap", "kerberos", "ssl_certificates")


def users(users_root: ET.Element) -> dict[str, User]:
    """The users of a merged users file; ConfigError for an auth the stand-in lacks."""
    found: dict[str, User] = {}
    for element in users_root.find("users") or []:
        if not isinstance(element.tag, str):
            continue
        name = element.tag
        kinds = [k for k in _PASSWORD_KINDS if element.find(k) is not None]
        unsupported = [k for k in _UNSUPPORTED_AUTH if element.find(k) is not None]
        if unsupported:
            raise ConfigError(f"user {name}: <{unsupported[0]}> is not supported by the stand-in")
        if len(kinds) > 1:
            raise ConfigError(f"user {name}: more than one of {', '.join(kinds)}")
        networks = []
        for ip in element.findall("networks/ip"):
            try:
                networks.append(ipaddress.ip_network((ip.text or "").strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"user {name}: <networks><ip>: {exc}") from exc
        found[name] = User(
            name=name,
            password=element.findtext("password"),
            sha256_hex=(element.findtext("password_sha256_hex") or "").strip() or None,
            no_password=element.find("no_password") is not None,
            networks=tuple(networks),
            profile=(element.findtext("profile") or "default").strip(),
        )
    return found


# -- the server ------------------------------------------------------------------------


class ConfigUsers:
    """The stand-in's `Authenticator`: the config's users and their profiles' settings."""

    def __init__(self, known: dict[str, User], profiles: dict[str, tuple[tuple[str, str], ...]]):
        self.known = known
        self.profiles = profiles

    def __call__(self, user: str, password: str, client: str) -> ch.Access:
        found = self.known.get(user)
        if found is None or not found.accepts(password) or not found.allows(client):
            raise ch.auth_failed(user)
        return ch.Access(user, self.profiles.get(found.profile, ()))


def profile_settings(engine: ch.Engine, profile: str) -> tuple[tuple[str, str], ...]:
    """What the engine resolves for `profile` (inherited profiles included), as SETs:
    ``SET profile`` first (its constraints), then every setting it changes, ``readonly``
    last."""
    quoted = profile.replace("\\", "\\\\").replace("'", "\\'")
    text = engine.query_text(
        "SELECT name, value FROM system.settings WHERE changed"  # noqa: S608 - quoted
        f" SETTINGS profile = '{quoted}'"
    )
    base = set(
        engine.query_text("SELECT name, value FROM system.settings WHERE changed").splitlines()
    )
    pairs = [tuple(line.split("\t", 1)) for line in text.splitlines() if line not in base]
    changed = [(k, v) for k, v in pairs if k != "readonly"]
    readonly = [(k, v) for k, v in pairs if k == "readonly"]
    return (("profile", profile), *changed, *readonly)


def _listen(host: str, port: int, handler: type, fd: int | None) -> ThreadingHTTPServer:
    if fd is not None:
        server = ThreadingHTTPServer(("", 0), handler, bind_and_activate=False)
        server.socket.close()
        server.socket = socket.socket(fileno=fd)
        server.server_address = server.socket.getsockname()[:2]
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        cls = type("Server", (ThreadingHTTPServer,), {"address_family": family})
        server = cls((host, port), handler, bind_and_activate=False)
        if family == socket.AF_INET6:
            server.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        server.server_bind()
        server.server_activate()
    server.daemon_threads = True
    return server


@dataclass
class StandIn:
    """A started stand-in: the engine and its HTTP listeners."""

    engine: ch.Engine
    servers: list[ThreadingHTTPServer]
    http_port: int

    def serve(self) -> None:
        threads = [
            threading.Thread(target=s.serve_forever, name="http", daemon=True) for s in self.servers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def shutdown(self) -> None:
        for s in self.servers:
            s.shutdown()

    def close(self) -> None:
        for s in self.servers:
            s.server_close()
        self.engine.close()


def start(config_file: Path, *, listen_fd: int | None = None) -> StandIn:
    """Read the tree, start the engine on it and bind the HTTP listeners; ConfigError
    when the tree cannot start a server."""
    config = merged(config_file)
    ports = check_ports(config)
    if "http_port" not in ports:
        raise ConfigError("<http_port> is not set: the stand-in serves HTTP only")
    users_path = users_file(config, config_file)
    known = users(merged(users_path))
    data = (config.findtext("path") or "/var/lib/clickhouse/").strip()
    try:
        engine = ch.Engine(f"file:{data}?config-file={config_file}", authenticator=ch.Passwords())
    except Exception as exc:
        raise ConfigError(f"the ClickHouse engine refused {config_file}: {exc}") from exc
    profiles = {u.profile for u in known.values()}
    engine.authenticator = ConfigUsers(
        known, {p: profile_settings(engine, p) for p in sorted(profiles)}
    )
    handler = ch.handler_class(engine, server_version=SERVER_VERSION)
    hosts = [h.strip() for h in (e.text or "" for e in config.findall("listen_host")) if h]
    listen_try = (config.findtext("listen_try") or "0").strip() == "1"
    servers: list[ThreadingHTTPServer] = []
    if listen_fd is not None:
        servers.append(_listen("", 0, handler, listen_fd))
    for host in hosts or ["::1", "127.0.0.1"]:
        if listen_fd is not None:
            break
        try:
            servers.append(_listen(host, ports["http_port"], handler, None))
        except OSError as exc:
            if not listen_try and hosts:
                engine.close()
                raise ConfigError(f"cannot listen on {host}:{ports['http_port']}: {exc}") from exc
            logger.warning("not listening on %s:%s: %s", host, ports["http_port"], exc)
    if not servers:
        engine.close()
        raise ConfigError(f"no listen_host could be bound for port {ports['http_port']}")
    for s in servers:
        logger.info("listening for HTTP on %s", s.server_address)
    return StandIn(engine=engine, servers=servers, http_port=ports["http_port"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="clickhouse-server",
        description="ClickHouse stand-in: chDB started from a ClickHouse config tree, "
        "serving ClickHouse's HTTP interface (not ClickHouse; see standins/clickhouse.py)",
    )
    parser.add_argument("--config-file", "-C", required=True, type=Path)
    parser.add_argument(
        "--listen-fd",
        type=int,
        help="serve HTTP on this inherited listening socket instead of listen_host:http_port",
    )
    args, _rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s clickhouse-standin %(levelname)s %(message)s"
    )
    try:
        standin = start(args.config_file.absolute(), listen_fd=args.listen_fd)
    except ConfigError as exc:
        print(f"clickhouse stand-in: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1

    def stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=standin.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"clickhouse stand-in ready: engine {standin.engine.version}, http_port "
        f"{standin.http_port}",
        flush=True,
    )
    try:
        standin.serve()
    finally:
        standin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
