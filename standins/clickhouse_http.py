"""ClickHouse's HTTP interface over chDB (the ClickHouse engine in-process): a stand-in.

Why it exists: deployments reach ClickHouse with clickhouse-connect over HTTP, and no
modern ClickHouse server can be installed on our machines (Debian's is 18.16, which
clickhouse-connect cannot talk to). This module speaks enough of ClickHouse's HTTP
interface for clickhouse-connect (and curl) and executes every statement on the real
engine, chDB. It is not a mock: nothing is answered from canned data. Two servers use it,
both stand-ins and both outside the runtime package and the runtime image:

- ``tenantry_dev.loopback_server``: an endpoint on loopback for tests and local runs;
- ``standins.clickhouse``: the ClickHouse stand-in image's server, started from a pod's
  mounted config tree exactly as clickhouse-server is.

It imports only the standard library and chDB, so the stand-in image needs nothing else.

What it implements, as ClickHouse's HTTP handler does:

- `GET /ping` and `GET /` answer `Ok.`; the SQL is the `query` URL parameter
  followed by the request body. An `INSERT ... FORMAT <name>` with data (the
  statement in the URL and the data in the body, or both in the body with the
  data after the first newline, as clickhouse-connect sends bytes) runs as a
  streaming insert (chDB's `send_insert`), so binary data works: as query text
  chDB would split it at a blank line (two newline bytes), which binary rows
  can contain, and drop the rest;
- `database`, `default_format` (TabSeparated when absent), `query_id`,
  `param_<name>` (server-side query parameters), every other URL parameter is a
  setting applied to that request only;
- HTTP sessions (`session_id`, `session_timeout`, `session_check`): one chDB
  connection per user and session, so SET, USE and temporary tables persist in it;
  concurrent use of one session fails with SESSION_IS_LOCKED as on a server;
- request bodies chunked or not, `Content-Encoding` gzip, deflate, lz4 (frame),
  zstd; auth by Basic header, X-ClickHouse-User/Key headers or user/password
  parameters, checked by the server's `Authenticator` (the loopback server: a dict of
  passwords; the stand-in: the users of the config tree), which also names the
  settings of the user's profile; those are SET on the request's connection before the
  request's own settings, so the engine enforces `readonly` and the profile's values;
- responses carry X-ClickHouse-Query-Id, -Format, -Timezone, -Summary, and
  errors X-ClickHouse-Exception-Code with ClickHouse's message and an HTTP
  status like the server's (400 syntax, 404 unknown table, 401 auth, 500 ...).

Limits, honestly:

- every statement runs as chDB's `default` user: the users only gate the HTTP door
  and bring their profile's settings; GRANTs, roles, quotas and row policies cannot
  be created or enforced per user (chDB refuses them);
- GET is read-only (statements that do not start with SELECT/SHOW/... fail with
  READONLY);
- responses are never compressed (Accept-Encoding is ignored, which clients must
  accept); ClickHouse's own block compression (`compress=1`/`decompress=1`),
  multipart/form-data queries and external data are refused with an error;
- responses are buffered, not streamed; progress headers are not sent;
- `client_protocol_version` is ignored, so clients fall back to protocol 0;
- one engine per process and one process per data directory (chDB's rules).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hmac
import json
import logging
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import chdb

logger = logging.getLogger(__name__)

# URL parameters that steer the HTTP handler instead of being settings.
_TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "user",
        "password",
        "quota_key",
        "role",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "http_response_buffer_size",
        "cancel_http_readonly_queries_on_client_close",
    }
)
_READ_ONLY_KEYWORDS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"}
)
_FIRST_WORD = re.compile(rb"^(?:\s+|--[^\n]*\n|/\*.*?\*/)*([A-Za-z]+)", re.DOTALL)
_TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
# An INSERT and its data in one text: the data starts after the first newline.
_INSERT_DATA = re.compile(
    rb"^(\s*INSERT\b.*?)\bFORMAT\s+([A-Za-z0-9_]+)[ \t]*(?:\r?\n)?", re.IGNORECASE | re.DOTALL
)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ClickHouse error codes mapped to HTTP statuses as its HTTP handler does.
_STATUS_BY_CODE = {
    516: 401,  # AUTHENTICATION_FAILED
    497: 403,  # ACCESS_DENIED
    164: 403,  # READONLY
    60: 404,  # UNKNOWN_TABLE
    81: 404,  # UNKNOWN_DATABASE
    372: 404,  # SESSION_NOT_FOUND
    46: 400,  # UNKNOWN_FUNCTION
    47: 400,  # UNKNOWN_IDENTIFIER
    62: 400,  # SYNTAX_ERROR
    27: 400,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    36: 400,  # BAD_ARGUMENTS
    115: 400,  # UNKNOWN_SETTING
    48: 501,  # NOT_IMPLEMENTED
}
_MAX_SESSION_TIMEOUT = 3600.0
_CODE = re.compile(r"Code:\s*(\d+)")


def connect(dsn: str) -> Any:
    """A new chDB connection on `dsn` (chdb ships no annotations for it)."""
    return chdb.connect(dsn)  # type: ignore[no-untyped-call, unused-ignore]


def error_code(message: str) -> int:
    """ClickHouse's numeric code in an engine message ("Code: 60. DB::Exception: ..."),
    or 1001 (STD_EXCEPTION) when it names none."""
    found = _CODE.search(message)
    return int(found.group(1)) if found else 1001


class RequestError(Exception):
    """An error the HTTP layer raises itself, in ClickHouse's shape."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")
        self.code = code


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(data))
    if encoding == "zstd":
        from backports import zstd

        return zstd.decompress(data)
    raise RequestError(48, "NOT_IMPLEMENTED", f"Content-Encoding {encoding} is not supported")


def _content_type(fmt: str) -> str:
    if fmt.startswith(("TabSeparated", "TSV")):
        return "text/tab-separated-values; charset=UTF-8"
    if fmt.startswith("JSON"):
        return "application/json; charset=UTF-8"
    if fmt.startswith("CSV"):
        return "text/csv; charset=UTF-8"
    return "application/octet-stream"


@dataclass
class _Session:
    conn: Any
    timeout: float
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Response:
    """What the handler sends back: status, body and ClickHouse headers."""

    status: int
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Access:
    """Whom a request runs for: the user's name and the settings of its profile, which
    the engine SETs on the request's connection before the request's own settings (in
    this order; `readonly` belongs last, since after `readonly = 1` nothing can be SET)."""

    user: str
    settings: tuple[tuple[str, str], ...] = ()


class Authenticator(Protocol):
    """Checks a request's credentials (user, password, client address) and returns its
    `Access`, or raises `auth_failed`."""

    def __call__(self, user: str, password: str, client: str) -> Access: ...


def auth_failed(user: str) -> RequestError:
    """ClickHouse's answer to bad credentials (516, the same text whatever was wrong)."""
    return RequestError(
        516,
        "AUTHENTICATION_FAILED",
        f"{user}: Authentication failed: password is incorrect, or there is no user with such name",
    )


class Passwords(dict[str, str]):
    """The simplest `Authenticator`: user -> plain password, no profile settings."""

    def __call__(self, user: str, password: str, client: str) -> Access:  # noqa: ARG002
        expected = self.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise auth_failed(user)
        return Access(user)


class Engine:
    """chDB behind the HTTP semantics: sessions, settings, parameters, errors.

    `dsn` is what chDB opens (a data directory, or `file:<dir>?config-file=<config.xml>`
    for a server config tree whose config.d/users.d the engine merges at start)."""

    def __init__(self, dsn: str, *, authenticator: Authenticator) -> None:
        self._dsn = dsn
        self.authenticator = authenticator
        # The base connection keeps the engine up between requests.
        self._base: Any = connect(self._dsn)
        version, zone = self._base.query("SELECT version(), timezone()", "TSV").bytes().split()
        self.version = version.decode()
        self.timezone = zone.decode()
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._sessions_lock = threading.Lock()

    def query_text(self, sql: str) -> str:
        """Run `sql` on a connection of its own (as the engine's own `default`): its
        TSV text. (A query's `SETTINGS profile = ...` leaves the profile's constraints
        on its connection, so a connection is never shared for such queries.)"""
        conn = connect(self._dsn)
        try:
            return bytes(conn.query(sql, "TSVRaw").bytes()).decode()
        finally:
            conn.close()

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions.values():
                session.conn.close()
            self._sessions.clear()
        self._base.close()

    def authenticate(self, user: str, password: str, client: str = "127.0.0.1") -> Access:
        return self.authenticator(user, password, client)

    def _open(self, access: Access) -> Any:
        """A fresh connection carrying `access`'s profile settings."""
        conn = connect(self._dsn)
        try:
            for name, value in access.settings:
                conn.query(f"SET {name} = {_literal(value)}", "TSV")
        except Exception:
            conn.close()
            raise
        return conn

    def _acquire(
        self, access: Access, session_id: str, timeout: float, check: bool
    ) -> tuple[Any, Callable[[], None]]:
        if not session_id:
            conn = self._open(access)
            return conn, conn.close
        key = (access.user, session_id)
        with self._sessions_lock:
            now = time.monotonic()
            for name, old in list(self._sessions.items()):
                if now - old.last_used > old.timeout and not old.lock.locked():
                    old.conn.close()
                    del self._sessions[name]
            session = self._sessions.get(key)
            if session is None:
                if check:
                    raise RequestError(372, "SESSION_NOT_FOUND", f"Session {session_id} not found")
                session = _Session(conn=self._open(access), timeout=timeout)
                self._sessions[key] = session
            if not session.lock.acquire(blocking=False):
                raise RequestError(
                    373,
                    "SESSION_IS_LOCKED",
                    f"Session {session_id} is locked by a concurrent client",
                )
            session.timeout = timeout

        def release() -> None:
            session.last_used = time.monotonic()
            session.lock.release()

        return session.conn, release

    def execute(
        self,
        *,
        method: str,
        params: Mapping[str, str],
        body: bytes,
        access: Access | None = None,
    ) -> Response:
        """Run one HTTP request's SQL for `access` (default: `default`, no settings) and
        shape ClickHouse's answer."""
        query_id = params.get("query_id") or str(uuid.uuid4())
        headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": self.timezone}
        try:
            return self._execute(
                method=method,
                params=params,
                body=body,
                headers=headers,
                access=access or Access("default"),
            )
        except RequestError as exc:
            return self.error(exc.code, str(exc), headers)
        except Exception as exc:
            return self.error(error_code(str(exc)), str(exc).strip(), headers)

    def error(self, code: int, message: str, headers: dict[str, str]) -> Response:
        headers["X-ClickHouse-Exception-Code"] = str(code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        text = f"{message} (version {self.version})\n"
        return Response(_STATUS_BY_CODE.get(code, 500), text.encode(), headers)

    def _execute(
        self,
        *,
        method: str,
        params: Mapping[str, str],
        body: bytes,
        headers: dict[str, str],
        access: Access,
    ) -> Response:
        if params.get("compress", "0") != "0" or params.get("decompress", "0") != "0":
            raise RequestError(
                48, "NOT_IMPLEMENTED", "ClickHouse block compression (compress/decompress)"
            )
        query = params.get("query", "").encode()
        sql = query + b"\n" + body if query and body else query or body
        if not sql.strip():
            if method == "GET":
                return Response(200, b"Ok.\n", {})
            raise RequestError(62, "SYNTAX_ERROR", "Empty query")
        first = _FIRST_WORD.match(sql)
        keyword = first.group(1).decode().upper() if first else ""
        returns_rows = keyword in _READ_ONLY_KEYWORDS
        if method == "GET" and not returns_rows:
            raise RequestError(
                164, "READONLY", "Cannot execute query in readonly mode: use POST for writes"
            )
        fmt = params.get("default_format") or "TabSeparated"
        if returns_rows and (trailing := _TRAILING_FORMAT.search(sql)):
            fmt = trailing.group(1).decode()
        binds = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v
            for k, v in params.items()
            if k not in _TRANSPORT_PARAMS and not k.startswith("param_")
        }
        for name in settings:
            if not _SETTING_NAME.match(name):
                raise RequestError(115, "UNKNOWN_SETTING", f"Unknown setting {name!r}")
        session_id = params.get("session_id", "")
        timeout = min(float(params.get("session_timeout") or 60), _MAX_SESSION_TIMEOUT)
        data = None
        if keyword == "INSERT" and query and body:  # INSERT ... FORMAT x in the URL?
            if inline := _TRAILING_FORMAT.search(query):
                data = (query[: inline.start()], inline.group(1).decode(), body)
        elif keyword == "INSERT" and (inline := _INSERT_DATA.match(body)):
            data = (inline.group(1), inline.group(2).decode(), body[inline.end() :])
        conn, release = self._acquire(
            access, session_id, timeout, params.get("session_check") == "1"
        )
        try:
            result = self._run(
                conn, sql, fmt, binds, settings, params.get("database"), session_id, data
            )
            # read everything before the connection can be closed or reused
            output = bytes(result.bytes())
            summary = {
                "read_rows": str(result.rows_read()),
                "read_bytes": str(result.bytes_read()),
                "written_rows": str(result.rows_written()),
                "written_bytes": str(result.bytes_written()),
                "elapsed_ns": str(int(result.elapsed() * 1e9)),
            }
        finally:
            release()
        headers["X-ClickHouse-Summary"] = json.dumps(summary)
        if returns_rows:
            headers["X-ClickHouse-Format"] = fmt
            headers["Content-Type"] = _content_type(fmt)
        else:
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        return Response(200, output, headers)

    @staticmethod
    def _run(
        conn: Any,
        sql: bytes,
        fmt: str,
        binds: Mapping[str, str],
        settings: Mapping[str, str],
        database: str | None,
        session_id: str,
        data: tuple[bytes, str, bytes] | None = None,
    ) -> Any:
        """Run `sql` with request-scoped database and settings.

        On a fresh (sessionless) connection they are simply set; in a session
        they are put back afterwards, as they apply to one request only.
        With `data` (statement without its FORMAT clause, format, rows) the
        insert streams the rows instead.
        """
        restore: list[str] = []
        if session_id and (database or settings):
            # names were checked against _SETTING_NAME, so quoting them is safe
            names = ", ".join(f"'{name}'" for name in settings)
            if names:
                current = conn.query(
                    "SELECT name, value, changed FROM system.settings "  # noqa: S608
                    f"WHERE name IN ({names})",
                    "JSONEachRow",
                )
                for line in current.bytes().splitlines():
                    row = json.loads(line)
                    restore.append(f"SET {row['name']} = {_setting_literal(row)}")
            if database:
                previous = conn.query("SELECT currentDatabase()", "TSVRaw").bytes().decode()
                restore.append(f"USE `{previous.strip()}`")
        try:
            if database:
                if not _SETTING_NAME.match(database):
                    raise RequestError(81, "UNKNOWN_DATABASE", f"Database {database!r} invalid")
                conn.query(f"USE `{database}`", "TSV")
            for name, value in settings.items():
                conn.query(f"SET {name} = {_literal(value)}", "TSV")
            if data is not None:
                insert, input_format, rows = data
                with conn.send_insert(insert.decode(), input_format) as inserter:
                    inserter.append(rows)
                    return _Inserted(inserter.finish())
            return conn.query(sql, fmt, params=dict(binds))
        finally:
            for statement in restore:
                try:
                    conn.query(statement, "TSV")
                except Exception:  # noqa: S112 - best effort, the session stays usable
                    continue


@dataclass(frozen=True)
class _Inserted:
    """A streaming insert's outcome, shaped like a query result."""

    outcome: Any

    def bytes(self) -> bytes:
        return b""

    def rows_read(self) -> int:
        return 0

    def bytes_read(self) -> int:
        return 0

    def rows_written(self) -> int:
        return int(self.outcome.rows_written)

    def bytes_written(self) -> int:
        return int(self.outcome.bytes_written)

    def elapsed(self) -> float:
        return float(self.outcome.elapsed)


def _literal(value: str) -> str:
    """A setting's value as a quoted SQL literal (ClickHouse converts it to the type)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _setting_literal(row: Mapping[str, Any]) -> str:
    """How to put a setting back from its system.settings row."""
    if not row["changed"]:
        return "DEFAULT"
    value = str(row["value"])
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value  # an expression value such as max_threads = 'auto(2)', already quoted
    return _literal(value)


def _request_user(handler: BaseHTTPRequestHandler, params: Mapping[str, str]) -> tuple[str, str]:
    auth = handler.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise RequestError(516, "AUTHENTICATION_FAILED", "bad Basic credentials") from exc
        return user, password
    if "X-ClickHouse-User" in handler.headers:
        return handler.headers["X-ClickHouse-User"], handler.headers.get("X-ClickHouse-Key", "")
    return params.get("user", "default"), params.get("password", "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response is two writes (headers, then body). With Nagle's algorithm on, the
    # body waited for the client's ACK of the headers, which the client delays by
    # 40 ms: every statement took 45-50 ms instead of 3 (seen with strace).
    disable_nagle_algorithm = True
    engine: Engine

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(1 << 16).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1 << 16) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1 << 16)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == "/ping":
            self._send(Response(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"}))
            return
        if url.path not in ("", "/"):
            self._send(Response(404, b"There is no handle " + url.path.encode() + b"\n", {}))
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        engine = self.engine
        try:
            if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
                raise RequestError(48, "NOT_IMPLEMENTED", "multipart/form-data queries")
            body = _decompress(body, self.headers.get("Content-Encoding", ""))
            user, password = _request_user(self, params)
            access = engine.authenticate(user, password, str(self.client_address[0]))
        except RequestError as exc:
            self._send(engine.error(exc.code, str(exc), {}))
            return
        except (OSError, ValueError, RuntimeError) as exc:
            self._send(engine.error(27, f"Cannot read request body: {exc}", {}))
            return
        self._send(engine.execute(method=method, params=params, body=body, access=access))

    def _send(self, response: Response) -> None:
        self.send_response(response.status, HTTPStatus(response.status).phrase)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Keep-Alive", "timeout=10")
        self.end_headers()
        self.wfile.write(response.body)


def handler_class(engine: Engine, *, server_version: str) -> type[BaseHTTPRequestHandler]:
    """The request handler of an HTTP server (`http.server`) that serves `engine`."""
    return type("Handler", (_Handler,), {"engine": engine, "server_version": server_version})
