"""Fixtures for the ingestion tests: a real redis-server per test, the real ClickHouse engine.

Redis runs as a process on a free loopback port with AOF on (`--appendonly yes`),
so a test can SIGKILL it and start it again on the same directory and port and
find what was acknowledged. ClickHouse is the session's chDB engine
(tests/conftest.py); a writer running in a subprocess, which cannot open the
chDB directory, reaches the same engine through the loopback HTTP endpoint.
The HTTP side runs as a real aiohttp server on a free port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from ingestion import events, server
from ingestion.auth import StaticKeyValidator
from ingestion.metrics import Metrics
from ingestion.settings import key_digest
from ingestion.stream import Names, Stream, connect
from ingestion.usage import FlushUsage
from ingestion.writer import Writer
from tenantry.clickhouse import layout, schema
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import AsyncClickHouse
from tenantry_dev.loopback_server import LoopbackServer
from tenantry_dev.services import free_port
from tests.conftest import LOOPBACK_WRITER_PASSWORD, REPO
from tests.support.wait import eventually, stop_process

TENANT = "acme"
API_KEY = "test-api-key-1"


@dataclass
class RedisProcess:
    """redis-server with AOF in `folder` on `port`; `kill` and `start` again keep both."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing (Debian package redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        try:
            eventually(listening, what="redis-server listening", interval=0.02, ignore=(OSError,))
        except BaseException:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL by its PID (what the AOF tests need), and reap it."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            stop_process(self.process, what="redis-server")
        self.process = None


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    folder = tmp_path / "redis"
    folder.mkdir()
    proc = RedisProcess(folder).start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
async def redis(redis_process: RedisProcess) -> AsyncIterator[Redis]:
    client = connect(host="127.0.0.1", port=redis_process.port)
    yield client
    await client.aclose()


@pytest.fixture
def names() -> Names:
    return Names.for_prefix(f"tenantry:ingest:{TENANT}")


@pytest.fixture
def stream(redis: Redis, names: Names) -> Stream:
    return Stream(redis, names)


@pytest.fixture
def database(chdb_client: ChdbClient) -> Iterator[str]:
    """A provisioned tenant database (events table with its dedup window)."""
    name = f"ing_{uuid.uuid4().hex[:10]}"
    layout.provision(chdb_client, schema.TenantSchema(database=name, retention_days=30))
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")


@dataclass
class Service:
    """The HTTP side on a real port, and what it writes to."""

    url: str
    metrics_url: str  # the internal listener, where /metrics is
    session: aiohttp.ClientSession
    metrics: Metrics
    stream: Stream
    ingest: server.Ingest

    async def post(
        self, body: bytes, *, content_type: str = "application/x-ndjson", **headers: str
    ) -> tuple[int, dict[str, str], object]:
        sent = {"Authorization": f"Bearer {API_KEY}", "Content-Type": content_type, **headers}
        async with self.session.post(f"{self.url}/v1/events", data=body, headers=sent) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(f"{self.url}{path}") as resp:
            return resp.status, await resp.text()

    async def scrape(self) -> str:
        """The metrics page, from the internal listener."""
        async with self.session.get(f"{self.metrics_url}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()


@pytest.fixture
async def service(stream: Stream) -> AsyncIterator[Service]:
    async for made in make_service(stream):
        yield made


async def make_service(
    stream: Stream,
    *,
    max_backlog: int = 1000,
    max_body_bytes: int = 1024 * 1024,
    keys: tuple[str, ...] = (API_KEY,),
    key_limit: server.KeyLimit | None = None,
    idempotency_seconds: int = 3600,
) -> AsyncGenerator[Service, None]:
    metrics = Metrics()
    ingest = server.Ingest(
        tenant=TENANT,
        stream=stream,
        validator=StaticKeyValidator(frozenset(map(key_digest, keys)), tenant=TENANT),
        metrics=metrics,
        limits=events.Limits(retention_days=30, max_events=1000),
        max_backlog=max_backlog,
        retry_after_seconds=2,
        max_body_bytes=max_body_bytes,
        key_limit=key_limit,
        idempotency_seconds=idempotency_seconds,
    )
    test_server = TestServer(server.create_app(ingest), host="127.0.0.1", port=free_port())
    await test_server.start_server(**server.RUNNER_OPTIONS)  # as ingestion.cli runs it
    metrics_server = TestServer(
        server.create_metrics_app(ingest), host="127.0.0.1", port=free_port()
    )
    await metrics_server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Service(
            url=str(test_server.make_url("")).rstrip("/"),
            metrics_url=str(metrics_server.make_url("")).rstrip("/"),
            session=session,
            metrics=metrics,
            stream=stream,
            ingest=ingest,
        )
    finally:
        await session.close()
        await test_server.close()
        await metrics_server.close()


class RecordingUsage:
    def __init__(self) -> None:
        self.flushes: list[FlushUsage] = []

    async def record(self, usage: FlushUsage) -> None:
        self.flushes.append(usage)


def make_writer(
    stream: Stream,
    chdb_client: ChdbClient,
    *,
    database: str,
    consumer: str = "writer-1",
    claim_idle_seconds: float = 60.0,
    flush_seconds: float = 0.2,
) -> tuple[Writer, Metrics, RecordingUsage]:
    metrics = Metrics()
    usage = RecordingUsage()
    writer = Writer(
        stream=stream,
        clickhouse=AsyncClickHouse(chdb_client),
        table=f"{database}.events",
        consumer=consumer,
        tenant=TENANT,
        metrics=metrics,
        usage=usage,
        flush_seconds=flush_seconds,
        claim_idle_seconds=claim_idle_seconds,
    )
    return writer, metrics, usage


def ndjson_events(count: int, *, prefix: str = "e") -> bytes:
    """`count` valid events as NDJSON, with distinct event ids."""
    lines = [
        (
            f'{{"event": "view", "user_id": "u{i % 13}", "event_id": "{uuid.uuid4()}", '
            f'"properties": {{"n": {i}, "tag": "{prefix}"}}}}'
        )
        for i in range(count)
    ]
    return ("\n".join(lines) + "\n").encode()


def metric_value(text: str, name: str) -> float:
    """The value of an unlabelled sample `name` in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def writer_process(
    *,
    loopback: LoopbackServer,
    redis_process: RedisProcess,
    database: str,
    consumer: str,
    log: Path,
    pause_marker: Path | None = None,
    args: tuple[str, ...] = ("--writer-only",),
    listen_port: int | None = None,
    metrics_port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`python -m ingestion` as the operator's Deployment configures it, on the test stack."""
    env = {
        **os.environ,
        "TENANTRY_TENANT": TENANT,
        "TENANTRY_LISTEN": f"127.0.0.1:{listen_port or free_port()}",
        "TENANTRY_METRICS_LISTEN": f"127.0.0.1:{metrics_port or free_port()}",
        "TENANTRY_REDIS_HOST": "127.0.0.1",
        "TENANTRY_REDIS_PORT": str(redis_process.port),
        "TENANTRY_CLICKHOUSE_URL": loopback.url,
        "TENANTRY_CLICKHOUSE_USER": "writer",
        "TENANTRY_CLICKHOUSE_PASSWORD": LOOPBACK_WRITER_PASSWORD,
        "TENANTRY_CLICKHOUSE_DATABASE": database,
        "TENANTRY_RETENTION_DAYS": "30",
        "TENANTRY_INGEST_KEYS": key_digest(API_KEY),
        "TENANTRY_INGEST_CONSUMER": consumer,
        "TENANTRY_INGEST_FLUSH_SECONDS": "0.3",
        "TENANTRY_INGEST_CLAIM_IDLE_SECONDS": "0.5",
    }
    if pause_marker is not None:
        env["TENANTRY_INGEST_TEST_PAUSE_AFTER_INSERT"] = str(pause_marker)
    env.update(extra_env or {})
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ingestion", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def rows(chdb_client: ChdbClient, database: str) -> tuple[int, int]:
    (row,) = chdb_client.query(
        f"SELECT count() AS n, uniqExact(event_id) AS u FROM `{database}`.events"  # noqa: S608
    )
    return int(row["n"]), int(row["u"])
