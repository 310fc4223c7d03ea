"""Fixtures that start the real ClickHouse engine (chDB) and the loopback HTTP endpoint.

chDB allows one engine per process and one process per data directory, so the
whole pytest process shares ONE data directory (session-scoped) and every test
gets its own database in it. The loopback server runs in this process over the
same directory (connections on one path share the engine), so the
clickhouse-connect adapter and the chDB adapter see the same data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseClient
from tenantry.clickhouse.http_client import HttpClickHouseClient
from tenantry.clickhouse.loopback_server import LoopbackServer

WRITER_PASSWORD = "loopback-test-password"


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def chdb_client(chdb_path: Path) -> Iterator[ChdbClient]:
    client = ChdbClient(chdb_path)
    yield client
    client.close()


@pytest.fixture(scope="session")
def loopback(chdb_path: Path, chdb_client: ChdbClient) -> Iterator[LoopbackServer]:
    server = LoopbackServer(
        chdb_path, port=0, users={"default": "", "writer": WRITER_PASSWORD}
    ).start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def http_client(loopback: LoopbackServer) -> Iterator[HttpClickHouseClient]:
    client = HttpClickHouseClient(
        host=loopback.host, port=loopback.port, username="writer", password=WRITER_PASSWORD
    )
    yield client
    client.close()


@pytest.fixture(params=["chdb", "http"])
def client(request: pytest.FixtureRequest) -> ClickHouseClient:
    """Each adapter in turn: tests using it must pass through both."""
    name = request.param
    fixture = "chdb_client" if name == "chdb" else "http_client"
    adapter: ClickHouseClient = request.getfixturevalue(fixture)
    return adapter


@pytest.fixture
def database(chdb_client: ChdbClient) -> Iterator[str]:
    """A fresh database name; dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    chdb_client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
