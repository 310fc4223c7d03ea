"""The loopback ClickHouse-HTTP endpoint: clickhouse-connect and plain HTTP against it."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import http.client
import select
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import clickhouse_connect
import lz4.frame
import pytest
from clickhouse_connect.driver.client import Client

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseError
from tenantry.clickhouse.http_client import HttpClickHouseClient
from tenantry_dev.loopback_server import LoopbackServer
from tests.integration.clickhouse.conftest import WRITER_PASSWORD
from tests.support.wait import scaled, stop_process


@pytest.fixture
def raw_client(loopback: LoopbackServer) -> Iterator[Client]:
    """clickhouse-connect as users configure it by default: session, Native, lz4."""
    client = clickhouse_connect.get_client(
        host=loopback.host, port=loopback.port, username="writer", password=WRITER_PASSWORD
    )
    yield client
    client.close()


def _request(
    server: LoopbackServer,
    method: str,
    params: dict[str, str],
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=scaled(60))
    try:
        path = "/?" + urllib.parse.urlencode(params) if params else "/"
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_native_insert_with_lz4_and_native_query(raw_client: Client, database: str) -> None:
    raw_client.command(f"CREATE DATABASE `{database}`")
    raw_client.command(
        f"CREATE TABLE `{database}`.t (id UInt64, name String, at DateTime64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY id"
    )
    at = dt.datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=dt.UTC)
    rows = [[i, f"name-{i}", at] for i in range(1000)]

    summary = raw_client.insert(f"{database}.t", rows, column_names=["id", "name", "at"])

    assert summary.written_rows == 1000
    sql = f"SELECT id, name, at FROM `{database}`.t ORDER BY id LIMIT 2"  # noqa: S608 - generated test database name
    result = raw_client.query(sql)
    naive = at.replace(tzinfo=None)  # clickhouse-connect's choice for a UTC server
    assert result.result_rows == [(0, "name-0", naive), (1, "name-1", naive)]
    assert raw_client.write_compression == "lz4"  # the insert body went lz4-compressed


def test_session_keeps_state_between_requests(raw_client: Client, loopback: LoopbackServer) -> None:
    raw_client.command("CREATE TEMPORARY TABLE scratch (x UInt8)")
    raw_client.command("INSERT INTO scratch VALUES (1), (2)")
    raw_client.command("SET max_threads = 3")

    assert raw_client.command("SELECT sum(x) FROM scratch") == 3
    assert raw_client.command("SELECT getSetting('max_threads')") == 3
    other = clickhouse_connect.get_client(
        host=loopback.host, port=loopback.port, username="writer", password=WRITER_PASSWORD
    )
    try:
        assert other.command("SELECT getSetting('max_threads')") != 3
    finally:
        other.close()


def test_url_settings_apply_to_one_request(raw_client: Client) -> None:
    sql = "SELECT getSetting('max_block_size') AS b, getSetting('max_threads') AS t"
    before = raw_client.query(sql).result_rows
    raw_client.command("SET max_block_size = 1234")  # session state, as on a server

    one = raw_client.query(sql, settings={"max_block_size": 77, "max_threads": 1})

    assert one.result_rows == [(77, 1)]
    assert raw_client.query(sql).result_rows == [(1234, before[0][1])]


def test_wrong_password_is_refused(loopback: LoopbackServer) -> None:
    with pytest.raises(ClickHouseError) as caught:
        HttpClickHouseClient(
            host=loopback.host, port=loopback.port, username="writer", password="wrong"
        )
    assert caught.value.code == 516


def test_plain_http_interface(loopback: LoopbackServer) -> None:
    assert _request(loopback, "GET", {})[2] == b"Ok.\n"
    status, headers, body = _request(loopback, "GET", {"query": "SELECT 1 + 1"})
    assert (status, body) == (200, b"2\n")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert "read_rows" in headers["X-ClickHouse-Summary"]

    status, _, body = _request(
        loopback,
        "GET",
        {"query": "SELECT {a:UInt8} * 2 AS x", "param_a": "21", "default_format": "JSONEachRow"},
    )
    assert (status, body) == (200, b'{"x":42}\n')


def test_session_check_and_unknown_settings(loopback: LoopbackServer) -> None:
    status, headers, _ = _request(
        loopback, "POST", {"session_id": "never-opened", "session_check": "1"}, b"SELECT 1"
    )
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "372"
    status, headers, body = _request(loopback, "POST", {"no_such_setting": "1"}, b"SELECT 1")
    assert status == 400
    assert headers["X-ClickHouse-Exception-Code"] == "115"
    assert b"no_such_setting" in body


def test_get_is_read_only(loopback: LoopbackServer) -> None:
    status, headers, body = _request(loopback, "GET", {"query": "CREATE DATABASE nope"})
    assert status == 403
    assert headers["X-ClickHouse-Exception-Code"] == "164"
    assert b"READONLY" in body


def test_post_bodies_gzip_lz4_and_chunked(loopback: LoopbackServer, database: str) -> None:
    _request(loopback, "POST", {}, f"CREATE DATABASE `{database}`".encode())
    _request(
        loopback,
        "POST",
        {},
        f"CREATE TABLE `{database}`.t (x UInt32) ENGINE = MergeTree ORDER BY x".encode(),
    )
    status, _, _ = _request(
        loopback,
        "POST",
        {"query": f"INSERT INTO `{database}`.t FORMAT TSV"},
        gzip.compress(b"1\n2\n3\n"),
        {"Content-Encoding": "gzip"},
    )
    assert status == 200
    status, _, _ = _request(
        loopback,
        "POST",
        {"query": f"INSERT INTO `{database}`.t FORMAT TSV"},
        lz4.frame.compress(b"10\n"),
        {"Content-Encoding": "lz4"},
    )
    assert status == 200
    conn = http.client.HTTPConnection(loopback.host, loopback.port, timeout=scaled(60))
    try:
        query = urllib.parse.urlencode({"query": f"INSERT INTO `{database}`.t FORMAT TSV"})
        conn.request("POST", "/?" + query, body=iter([b"4\n", b"5\n"]), encode_chunked=True)
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    total = f"SELECT sum(x) FROM `{database}`.t"  # noqa: S608 - generated test database name
    _, _, body = _request(loopback, "POST", {}, total.encode())
    assert body == b"25\n"


def test_errors_carry_clickhouse_code_and_status(loopback: LoopbackServer) -> None:
    status, headers, body = _request(loopback, "POST", {}, b"SELECT * FROM nowhere.t")
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "81"
    assert body.startswith(b"Code: 81. DB::Exception:")


def test_binds_loopback_only(chdb_client: ChdbClient) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoopbackServer(chdb_client.path, host="0.0.0.0")  # noqa: S104


def test_runs_as_a_subprocess_on_its_own_data_dir(tmp_path: Path) -> None:
    """The CLI: its own process, so its own engine and data directory."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenantry_dev.loopback_server",
            "--path",
            str(tmp_path / "data"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], scaled(120))
        assert readable, "the server printed nothing"
        line = proc.stdout.readline()
        assert line.startswith("listening http://127.0.0.1:"), line
        port = int(line.split()[1].rsplit(":", 1)[1])
        client = HttpClickHouseClient(host="127.0.0.1", port=port)
        client.command("CREATE TABLE default.t (x UInt8) ENGINE = MergeTree ORDER BY x")
        client.insert("default.t", [{"x": 7}])
        assert client.query("SELECT x FROM default.t") == [{"x": 7}]
        client.close()
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=scaled(60))
        stop_process(proc, what="loopback server")  # SIGKILL if it did not stop
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0


def test_concurrent_clients_through_one_server(
    http_client: HttpClickHouseClient, database: str
) -> None:
    """Threads share one stateless adapter; the server runs each on its own connection."""
    http_client.command(f"CREATE DATABASE `{database}`")
    http_client.command(
        f"CREATE TABLE `{database}`.t (w UInt8, i UInt16) ENGINE = MergeTree ORDER BY (w, i) "
        "SETTINGS non_replicated_deduplication_window = 100"
    )

    def work(worker: int) -> int:
        for batch in range(5):
            rows = [{"w": worker, "i": batch * 10 + i} for i in range(10)]
            http_client.insert(f"{database}.t", rows, dedup_token=f"{worker}-{batch}")
        found = http_client.query(
            "SELECT count() AS n FROM {db:Identifier}.t WHERE w = {w:UInt8}",
            {"db": database, "w": worker},
        )
        return int(found[0]["n"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        counts = list(pool.map(work, range(6)))

    assert counts == [50] * 6
