"""Schema provisioning through the operator's step, on the real engine (chDB and HTTP)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from tenantry_operator.dataplane import connect, schema_step
from tenantry_operator.model import TenantModel

from tenantry.clickhouse import schema
from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry.clickhouse.client import ClickHouseError
from tests.support.wait import scaled


class _NoKube:
    """With the override set, the operator never reads the Secret."""

    async def get(self, *_: object, **__: object) -> None:
        raise AssertionError("the override needs no Secret")


def _needs(status: dict[str, Any], model: TenantModel) -> bool:
    """Whether the schema step would provision a host whose pod is Ready and labelled."""
    ready = schema_step.HostPod(ready=True, labelled=True)
    pods = {schema_step.pod_name(h.name): ready for h in model.clickhouse.hosts}
    return bool(schema_step.hosts_to_provision(status, model, pods))


def _ttl_days(client: ChdbClient, model: TenantModel) -> int | None:
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'events'",
        {"db": connect.database_name(model)},
    )
    return schema.ttl_days_of(str(rows[0]["engine_full"]))


async def test_schema_is_created_once_and_recorded(
    chdb_client: ChdbClient, tenant: TenantModel
) -> None:
    assert _needs({}, tenant)
    first = await schema_step.ensure_schema(chdb_client, tenant)
    assert first.summary == "created"
    assert first.database == connect.database_name(tenant)
    assert first.hosts, "the host the client talks to has the events table"
    assert [reason for reason, _ in first.notices()] == ["SchemaCreated"]
    status = {"schema": first.status()}
    assert not _needs(status, tenant)

    second = await schema_step.ensure_schema(chdb_client, tenant)
    assert second.summary == "unchanged"
    assert not second.changed
    assert second.notices() == []
    assert second.status() == first.status()
    assert _ttl_days(chdb_client, tenant) == tenant.retention_days


async def test_retention_change_alters_ttl_in_place(
    chdb_client: ChdbClient, tenant: TenantModel
) -> None:
    first = await schema_step.ensure_schema(chdb_client, tenant)
    db = connect.database_name(tenant)
    chdb_client.insert(
        f"{db}.events",
        [
            {
                "event_id": "00000000-0000-0000-0000-000000000001",
                "timestamp": "2099-01-01 00:00:00",
                "event": "kept",
                "user_id": "u",
                "properties": "{}",
            }
        ],
    )
    shorter = dataclasses.replace(tenant, retention_days=7)
    assert _needs({"schema": first.status()}, shorter)
    result = await schema_step.ensure_schema(chdb_client, shorter)
    assert result.summary == "ttl altered"
    assert result.previous_ttl_days == tenant.retention_days
    assert _ttl_days(chdb_client, shorter) == 7
    rows = chdb_client.query(f"SELECT count() AS n FROM {db}.events")  # noqa: S608 - generated test names
    assert rows == [{"n": 1}], "the table was altered, not rebuilt"
    assert not _needs({"schema": result.status()}, shorter)


async def test_schema_through_the_http_adapter(
    chdb_client: ChdbClient, tenant: TenantModel, loopback_url: str
) -> None:
    """As the operator does it in local e2e: the override, no Secret read, clickhouse-connect."""
    kube: Any = _NoKube()
    client = await connect.open_for_tenant(kube, tenant, override=loopback_url, scoped=False)
    assert client is not None
    try:
        first = await schema_step.ensure_schema(client, tenant)
        again = await schema_step.ensure_schema(client, tenant)
    finally:
        client.close()
    assert (first.summary, again.summary) == ("created", "unchanged")
    assert first.hosts
    assert _ttl_days(chdb_client, tenant) == tenant.retention_days


async def test_sessions_are_bounded_and_closed(tenant: TenantModel, loopback_url: str) -> None:
    """Many tenants' steps at once open at most MAX_SESSIONS clients; all get their turn."""
    kube: Any = _NoKube()
    open_now = peak = 0
    answers: list[Any] = []

    async def step() -> None:
        nonlocal open_now, peak
        async with connect.session(kube, tenant, override=loopback_url, scoped=False) as client:
            assert client is not None
            open_now += 1
            peak = max(peak, open_now)
            answers.append(await asyncio.to_thread(client.query, "SELECT 1 AS one"))
            await asyncio.sleep(0.05)  # hold it, so the others would overlap if allowed
            open_now -= 1

    await asyncio.gather(*(step() for _ in range(3 * connect.MAX_SESSIONS)))
    assert peak == connect.MAX_SESSIONS
    assert answers == [[{"one": 1}]] * (3 * connect.MAX_SESSIONS)


async def test_a_failed_step_gives_its_session_back(tenant: TenantModel, loopback_url: str) -> None:
    """A step that raises must not keep its place: after more failures than there are
    places, a new session still opens at once."""
    kube: Any = _NoKube()

    async def failing_step() -> None:
        async with connect.session(kube, tenant, override=loopback_url, scoped=False) as client:
            assert client is not None
            await asyncio.to_thread(client.command, "SELECT no_such_function()")

    for _ in range(connect.MAX_SESSIONS + 1):
        with pytest.raises(ClickHouseError, match="no_such_function"):
            await failing_step()
    async with asyncio.timeout(scaled(30)):
        async with connect.session(kube, tenant, override=loopback_url, scoped=False) as client:
            assert client is not None
