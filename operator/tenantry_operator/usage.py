"""Usage the operator meters for billing: ClickHouse host time and sampled storage.

On a timer per tenant (``handlers.tenant_usage``, ``metering.report``), the operator
reports to the owning organisation's billing (``POST /v1/orgs/{org}/usage``, the
``UsageBatch`` of ``tenantry.internal_api``, through the process's
``tenantry.internal_client``):

- ``clickhouse_host_hours`` in host-seconds: hosts Ready x the timer interval, one report
  per aligned window, so a restart or a retry never bills a window twice (the window
  start is in the idempotency key);
- ``storage_bytes``: bytes on disk of the tenant's database, sampled from ClickHouse's
  ``system.parts`` (billing keeps the period's peak).

It writes nothing to Kubernetes: an idle tenant still makes no API writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from tenantry.clickhouse.client import ClickHouseClient
from tenantry.internal_api import Metric, UsageBatch, UsageEvent
from tenantry_operator.model import TenantModel

Obj = dict[str, Any]


def window_start(now: dt.datetime, interval: float) -> dt.datetime:
    """The start of the aligned window ``now`` falls in."""
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % int(interval), dt.UTC)


def events(
    *,
    model: TenantModel,
    uid: str,
    status: Obj,
    storage_bytes: int | None,
    now: dt.datetime,
    interval: float,
) -> UsageBatch:
    """The usage events of one window (pure)."""
    start = window_start(now, interval)
    key = f"operator:{uid}:{int(start.timestamp())}"
    hosts = 0 if model.suspend else int(status.get("hostsReady") or 0)
    out = [
        UsageEvent(
            metric=Metric.CLICKHOUSE_HOST_HOURS,
            tenant=model.name,
            quantity=hosts * int(interval),
            timestamp=start,
            idempotency_key=f"{key}:hosts",
        )
    ]
    if storage_bytes is not None:
        out.append(
            UsageEvent(
                metric=Metric.STORAGE_BYTES,
                tenant=model.name,
                quantity=storage_bytes,
                timestamp=start,
                idempotency_key=f"{key}:storage",
            )
        )
    return UsageBatch(events=out)


def sample_storage(client: ClickHouseClient, database: str) -> int:
    rows = client.query(
        "SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE database = {db:String} AND active",
        {"db": database},
    )
    return int(rows[0]["b"] or 0) if rows else 0


async def storage_of(client: ClickHouseClient, database: str) -> int | None:
    try:
        return await asyncio.to_thread(sample_storage, client, database)
    except Exception:  # the sample is best effort; host time is still reported
        return None
