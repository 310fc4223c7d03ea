"""Fixtures for the ClickHouse tests: both adapters, and a fresh database per test.

The engine itself (`chdb_path`, `chdb_client`) and the loopback HTTP endpoint
(`loopback`) are session fixtures in tests/conftest.py: chDB allows one engine
per process and one process per data directory, so the whole pytest process
(these tests, the ingestion tests, ...) shares ONE data directory and every test
gets its own database in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseClient
from tenantry.clickhouse.http_client import HttpClickHouseClient
from tenantry_dev.loopback_server import LoopbackServer
from tests.conftest import LOOPBACK_WRITER_PASSWORD

WRITER_PASSWORD = LOOPBACK_WRITER_PASSWORD


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
