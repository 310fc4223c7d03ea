"""Access-control SQL parsed by the real engine (chDB cannot execute it)."""

from __future__ import annotations

import pytest

from tenantry.clickhouse import access
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseError
from tenantry.clickhouse.schema import TenantSchema

LAYOUTS = [
    TenantSchema(database="acme", retention_days=30),
    TenantSchema(database="acme", retention_days=30, cluster="tenant", shards=2, replicas=2),
]


@pytest.mark.parametrize("tenant", LAYOUTS, ids=["single", "cluster"])
def test_every_access_statement_parses(chdb_client: ChdbClient, tenant: TenantSchema) -> None:
    statements = access.access_statements(
        tenant,
        writer_password_sha256=access.password_sha256("w" * 32),
        reader_password_sha256=access.password_sha256("r" * 32),
    )
    for statement in statements:
        formatted = chdb_client.query("SELECT formatQuery({q:String}) AS f", {"q": statement})
        assert formatted[0]["f"], statement
        assert chdb_client.query(f"EXPLAIN AST {statement}"), statement


def test_reader_profile_limits_survive_formatting(chdb_client: ChdbClient) -> None:
    tenant = LAYOUTS[0]
    reader = access.ReaderLimits(max_execution_time_s=12, max_result_rows=500)
    profile = access.profile_statements(tenant, reader=reader, writer=access.WriterLimits())[0]
    formatted = chdb_client.query("SELECT formatQuery({q:String}) AS f", {"q": profile})[0]["f"]
    # READONLY and CONST are the same constraint; the engine prints CONST
    assert "max_execution_time = 12 CONST" in formatted
    assert "max_result_rows = 100000" not in formatted
    assert "max_result_rows = 500 CONST" in formatted
    assert formatted.endswith("TO acme_reader_role")


def test_chdb_refuses_to_execute_access_control(chdb_client: ChdbClient) -> None:
    """The documented limit: this SQL must run on a real server, never here."""
    statement = access.role_statements(LAYOUTS[0])[0]
    with pytest.raises(ClickHouseError) as caught:
        chdb_client.command(statement)
    assert caught.value.code == 497  # ACCESS_DENIED
