"""`python -m ingestion` (what `tenantry ingest` runs): HTTP and writer in one process.

The environment is the operator's contract; events posted over HTTP (gzip
NDJSON) end up in the engine, and the process's /readyz and /metrics (on its internal
listener, not the public port) say so.
SIGTERM stops it cleanly.
"""

from __future__ import annotations

import gzip
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry_dev.loopback_server import LoopbackServer
from tenantry_dev.services import free_port, reserved_free_port
from tests.conftest import LOOPBACK_WRITER_PASSWORD
from tests.integration.ingestion.conftest import (
    API_KEY,
    RedisProcess,
    metric_value,
    ndjson_events,
    rows,
    writer_process,
)
from tests.support.wait import scaled, stop_process, until


def running(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Fail at once (with its log) when the process under test died."""
    assert proc.poll() is None, log.read_text()


async def until_ready(
    session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    async def ready() -> bool:
        running(proc, log)
        async with session.get(f"{url}/readyz") as resp:
            return resp.status == 200

    await until(ready, what="ingestion /readyz", timeout=120, ignore=(aiohttp.ClientError,))


async def until_rows(
    chdb_client: ChdbClient, database: str, count: int, proc: subprocess.Popen[bytes], log: Path
) -> None:
    def stored() -> int:
        running(proc, log)
        return rows(chdb_client, database)[0]

    await until(stored, accept=lambda n: n >= count, what=f"{count} rows", timeout=120)


async def test_ingest_process_accepts_writes_and_reports(
    redis_process: RedisProcess,
    loopback: LoopbackServer,
    chdb_client: ChdbClient,
    database: str,
    tmp_path: Path,
) -> None:
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "ingest.log"
    proc = writer_process(
        loopback=loopback,
        redis_process=redis_process,
        database=database,
        consumer="pod-1",
        log=log,
        args=(),
        listen_port=port,
        metrics_port=metrics_port,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await until_ready(session, url, proc, log)
            headers = {
                "X-API-Key": API_KEY,
                "Content-Type": "application/x-ndjson",
                "Content-Encoding": "gzip",
            }
            for _ in range(4):
                body = gzip.compress(ndjson_events(250))
                async with session.post(f"{url}/v1/events", data=body, headers=headers) as resp:
                    assert resp.status == 202, await resp.text()
            await until_rows(chdb_client, database, 1000, proc, log)

            async def scrape() -> str:
                async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                    return await resp.text()

            # The writer counts its rows after the insert returns: the rows can be in
            # ClickHouse a moment before the counter says so (seen on a loaded machine).
            text = await until(
                scrape,
                accept=lambda t: metric_value(t, "tenantry_ingest_inserted_rows_total") >= 1000,
                what="the writer's inserted-rows counter at 1000",
            )
            assert metric_value(text, "tenantry_ingest_events_accepted_total") == 1000
            assert metric_value(text, "tenantry_ingest_inserted_rows_total") == 1000
            assert metric_value(text, "tenantry_ingest_writer_lag_seconds") > 0
            assert 'tenantry_ingest_batches_total{outcome="accepted"} 4.0' in text
            async with session.get(f"{url}/metrics") as resp:  # not on the public port
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "not_found"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=scaled(60)) == 0, log.read_text()
    finally:
        stop_process(proc, what="ingestion")
    assert rows(chdb_client, database) == (1000, 1000)


async def test_events_are_accepted_while_clickhouse_is_down_and_written_once_it_is_up(
    redis_process: RedisProcess,
    chdb_path: Path,
    chdb_client: ChdbClient,
    database: str,
    tmp_path: Path,
) -> None:
    clickhouse_port = reserved_free_port()  # nothing listens there yet; restarted later
    absent = LoopbackServer(chdb_path, port=clickhouse_port)
    absent.close()
    port = free_port()
    log = tmp_path / "ingest.log"
    proc = writer_process(
        loopback=absent,
        redis_process=redis_process,
        database=database,
        consumer="pod-1",
        log=log,
        args=(),
        listen_port=port,
    )
    url = f"http://127.0.0.1:{port}"
    later: LoopbackServer | None = None
    try:
        async with aiohttp.ClientSession() as session:
            await until_ready(session, url, proc, log)
            headers = {"X-API-Key": API_KEY, "Content-Type": "application/x-ndjson"}
            for _ in range(3):
                body = ndjson_events(100)
                async with session.post(f"{url}/v1/events", data=body, headers=headers) as resp:
                    assert resp.status == 202, await resp.text()
            assert rows(chdb_client, database)[0] == 0
            await until(
                lambda: "ClickHouse not usable yet" in log.read_text(),
                what="the writer waiting for ClickHouse",
                timeout=120,
            )
            later = LoopbackServer(
                chdb_path,
                port=clickhouse_port,
                users={"default": "", "writer": LOOPBACK_WRITER_PASSWORD},
            ).start()
            await until_rows(chdb_client, database, 300, proc, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=scaled(60)) == 0, log.read_text()
    finally:
        stop_process(proc, what="ingestion")
        if later is not None:
            later.close()
    assert rows(chdb_client, database) == (300, 300)


async def test_a_taken_metrics_port_stops_the_process_before_it_takes_events(
    redis_process: RedisProcess, loopback: LoopbackServer, database: str, tmp_path: Path
) -> None:
    """The console e2e flake: ingestion bound its public port, answered /readyz, took a
    batch (202), then died binding its metrics port (another process held it), leaving
    the batch unwritten. Now it binds the internal listener first and exits naming the
    address, without ever answering on the public port."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    metrics_port = held.getsockname()[1]
    port = free_port()
    log = tmp_path / "ingest.log"
    proc = writer_process(
        loopback=loopback,
        redis_process=redis_process,
        database=database,
        consumer="pod-1",
        log=log,
        args=(),
        listen_port=port,
        metrics_port=metrics_port,
    )
    answered: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:

            async def exited() -> int | None:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        answered.append(resp.status)
                except aiohttp.ClientError:
                    pass
                return proc.poll()

            rc = await until(exited, accept=lambda r: r is not None, what="ingestion exited")
    finally:
        stop_process(proc, what="ingestion")
        held.close()
    text = log.read_text()
    assert rc == 1, text
    assert f"cannot listen on 127.0.0.1:{metrics_port} (metrics)" in text, text
    assert answered == [], f"the public port answered {answered} before the exit"
    with socket.socket() as sock:  # and it left the public port free
        sock.bind(("127.0.0.1", port))


@dataclass
class HttpOnly:
    """`python -m ingestion --no-writer` on a free port, with some variables of its own."""

    proc: subprocess.Popen[bytes]
    log: Path
    url: str


@pytest.fixture
def http_only(
    redis_process: RedisProcess, loopback: LoopbackServer, database: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], HttpOnly]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> HttpOnly:
        port = free_port()
        log = tmp_path / f"ingest-{len(started)}.log"
        proc = writer_process(
            loopback=loopback, redis_process=redis_process, database=database,
            consumer="pod-1", log=log, args=("--no-writer",), listen_port=port, extra_env=env,
        )  # fmt: skip
        started.append(proc)
        return HttpOnly(proc, log, f"http://127.0.0.1:{port}")

    yield start
    for proc in started:
        stop_process(proc, what="ingestion")


async def test_the_per_key_rate_limit_is_read_from_the_environment(
    http_only: Callable[[dict[str, str]], HttpOnly],
) -> None:
    service = http_only(
        {
            "TENANTRY_INGEST_RATE_LIMIT_PER_KEY": "2",
            "TENANTRY_INGEST_RATE_LIMIT_WINDOW_SECONDS": "30",
        }
    )
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/x-ndjson"}
    async with aiohttp.ClientSession() as session:
        await until_ready(session, service.url, service.proc, service.log)
        answers = []
        for _ in range(3):
            post = session.post(f"{service.url}/v1/events", data=ndjson_events(1), headers=headers)
            async with post as resp:
                answers.append((resp.status, resp.headers.get("Retry-After")))
    assert [status for status, _ in answers] == [202, 202, 429]
    assert 1 <= int(answers[2][1] or 0) <= 30


def test_a_bad_setting_stops_the_process_naming_the_variable(
    http_only: Callable[[dict[str, str]], HttpOnly],
) -> None:
    service = http_only({"TENANTRY_INGEST_RATE_LIMIT_PER_KEY": "lots"})
    assert service.proc.wait(timeout=scaled(60)) == 2
    assert "TENANTRY_INGEST_RATE_LIMIT_PER_KEY" in service.log.read_text()
