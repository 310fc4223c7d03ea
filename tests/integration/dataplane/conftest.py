"""Fixtures for the data-plane steps: a fresh tenant per test on the shared engine.

The engine (`chdb_path`, `chdb_client`) and the loopback HTTP endpoint
(`loopback`) are the session fixtures of tests/conftest.py: one chDB engine per
pytest process. Each test gets a tenant with a name of its own, so its database
`t_<name>` is its own too, and is dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenantry_operator.dataplane import connect
from tenantry_operator.model import TenantModel

from tenantry import clickhouse
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseClient
from tenantry_dev.loopback_server import LoopbackServer
from tests.conftest import LOOPBACK_WRITER_PASSWORD
from tests.unit.operator import fixtures


@pytest.fixture
def tenant(chdb_client: ChdbClient) -> Iterator[TenantModel]:
    """The starter example tenant under a fresh name (so a fresh database)."""
    model = dataclasses.replace(
        fixtures.model("tenant-starter"), name=f"dp-{uuid.uuid4().hex[:10]}"
    )
    yield model
    chdb_client.command(f"DROP DATABASE IF EXISTS `{connect.database_name(model)}` SYNC")


@pytest.fixture
def chdb_url(chdb_path: Path) -> str:
    """The override a local run would set to use the engine in-process."""
    return f"chdb://{chdb_path}"


@pytest.fixture
def loopback_url(loopback: LoopbackServer) -> str:
    """The override a local e2e run sets: the loopback endpoint over the same engine."""
    return f"http://writer:{LOOPBACK_WRITER_PASSWORD}@{loopback.host}:{loopback.port}/"


def tenant_client(url: str, model: TenantModel) -> ClickHouseClient:
    """A client whose current database is the tenant's (it must exist)."""
    return clickhouse.open_tenant_client(url, database=connect.database_name(model))
