"""Storage of dashboards: their custom resources, the tenant's ClickHouse that panels
read, and the Redis cache of panel results.

Dashboards follow the exact naming and labelling rules of tenants
(``<org slug>-<name>``, org-id label), so this module re-exports those functions
rather than copying them.

Panel queries run as the tenant's ``reader`` with the tenant database as current
database (panel SQL names ``events`` without a database) and with the limits appended
as a ``SETTINGS`` clause: the operator refuses panels that carry their own SETTINGS,
so the clause is always ours. Column types come from ``DESCRIBE`` of the same query
(the client interface returns rows as dicts), so even an empty result has columns.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis

from controlplane.tenants.repository import create, delete, get, list_all, replace_spec
from tenantry import contract
from tenantry.clickhouse import open_tenant_client
from tenantry.clickhouse.client import ClickHouseClient

__all__ = [
    "Limits",
    "cache_get",
    "cache_put",
    "clickhouse_url",
    "create",
    "delete",
    "get",
    "list_all",
    "replace_spec",
    "run_panel_query",
]

READER_USER = "reader"
_CACHE_PREFIX = "panel:"


@dataclass(frozen=True)
class Limits:
    max_execution_seconds: int
    max_result_rows: int
    readonly: int

    def clause(self) -> str:
        # ints only: nothing from a request reaches this text
        return (
            f"\nSETTINGS max_execution_time = {int(self.max_execution_seconds)},"
            f" max_result_rows = {int(self.max_result_rows)},"
            " result_overflow_mode = 'throw',"
            # each event once, even before the engine merged a producer's resent copy
            " final = 1,"
            f" readonly = {int(self.readonly)}"
        )


def clickhouse_url(tenant_resource: str, reader_password: str) -> str:
    host = contract.tenant_clickhouse_host(tenant_resource)
    port = contract.CLICKHOUSE_HTTP_PORT
    return f"http://{READER_USER}:{quote(reader_password, safe='')}@{host}:{port}/"


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]
    rows: list[list[Any]]


def _run(client: ClickHouseClient, sql: str, params: dict[str, str], limits: Limits) -> QueryResult:
    described = client.query(f"DESCRIBE TABLE ({sql}\n)", params)
    columns = [(str(r["name"]), str(r["type"])) for r in described]
    rows = client.query(sql + limits.clause(), params)
    return QueryResult(columns, [list(r.values()) for r in rows])


def _open_and_run(
    url: str, database: str, sql: str, params: dict[str, str], limits: Limits
) -> QueryResult:
    client = open_tenant_client(url, database=database)
    try:
        return _run(client, sql, params, limits)
    finally:
        client.close()


async def run_panel_query(
    url: str, *, database: str, sql: str, params: dict[str, str], limits: Limits
) -> QueryResult:
    """Rows of one panel query (raises ``ClickHouseError``). Blocking I/O runs in a
    worker thread; the wait is bounded a little beyond the query's own time limit."""
    return await asyncio.wait_for(
        asyncio.to_thread(_open_and_run, url, database, sql, params, limits),
        timeout=limits.max_execution_seconds + 10,
    )


def cache_key(org: str, dashboard: str, generation: int | None, panel: str, digest: str) -> str:
    return f"{_CACHE_PREFIX}{org}:{dashboard}:{generation}:{panel}:{digest}"


async def cache_get(redis: Redis, key: str) -> dict[str, Any] | None:
    raw = await redis.get(key)
    if raw is None:
        return None
    found = json.loads(raw)
    return found if isinstance(found, dict) else None


async def cache_put(redis: Redis, key: str, value: dict[str, Any], ttl_seconds: int) -> None:
    await redis.set(key, json.dumps(value, separators=(",", ":")), ex=ttl_seconds)
