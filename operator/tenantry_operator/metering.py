"""The usage timer's work (handlers.tenant_usage): meter one tenant for billing
(usage.py builds the events and posts them)."""

from __future__ import annotations

import datetime as dt

import kopf
from pydantic import ValidationError

from tenantry import internal_client
from tenantry.clickhouse.client import ClickHouseError
from tenantry_operator import normalize, usage
from tenantry_operator.dataplane import connect
from tenantry_operator.runtime import Runtime


async def report(
    rt: Runtime,
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    logger: kopf.Logger,
    *,
    interval: float,
) -> None:
    """Report host time and sampled storage to the organisation's billing."""
    settings = rt.settings
    internal = rt.internal
    if internal is None:  # no control plane configured
        return
    try:
        model = normalize.tenant_model(dict(body), images=settings.images)
    except ValidationError:  # its worker shows why (InvalidSpec); nothing to meter
        logger.warning("usage of %s not reported: its spec is invalid", meta.get("name"))
        return
    storage = None
    if (status.get("schema") or {}).get("database"):
        try:
            async with connect.session(
                rt.kube, model, override=settings.clickhouse_override, scoped=False
            ) as client:
                if client is not None:
                    storage = await usage.storage_of(client, model.database)
        except ClickHouseError:
            storage = None
    batch = usage.events(
        model=model,
        uid=str(meta.get("uid")),
        status=dict(status),
        storage_bytes=storage,
        now=dt.datetime.now(dt.UTC),
        interval=interval,
    )
    try:
        await internal.report_usage(str(model.org_id), batch)
    except internal_client.Refused as err:  # a 4xx: sending it again would not help
        logger.warning("usage report of %s refused: HTTP %d", model.name, err.status)
    except internal_client.Unavailable as err:  # unreachable or a 5xx: the timer retries
        raise kopf.TemporaryError(f"usage report failed: {err}", delay=30) from err
