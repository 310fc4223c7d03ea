"""The hook through which ingestion reports usage to billing.

The writer calls `UsageSink.record` once per successful flush (after the insert
and the ack), with the counts of that flush. `token` is the flush's ClickHouse
deduplication token: a flush replayed after a crash reports the same token again,
so billing treats it as an idempotency key and counts each event exactly once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

from tenantry.internal_api import Metric, UsageBatch, UsageEvent
from tenantry.internal_client import InternalClient, Refused, Retry, Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlushUsage:
    """One flush's counts. `bytes` is the size of the request bodies the flushed
    events came in (after any Content-Encoding is undone), whatever the format
    they are stored in; for stream entries written before RowBinary it is the
    size of their JSONEachRow rows."""

    tenant: str
    events: int
    bytes: int
    entries: int
    token: str


class UsageSink(Protocol):
    async def record(self, usage: FlushUsage) -> None: ...


class LogUsageSink:
    """Standalone deployments (no control plane or organisation): usage goes to the
    debug log."""

    async def record(self, usage: FlushUsage) -> None:
        logger.debug(
            "usage tenant=%s events=%d bytes=%d token=%s",
            usage.tenant,
            usage.events,
            usage.bytes,
            usage.token,
        )


class ControlPlaneUsageSink:
    """Reports each flush to the organisation's billing (``POST /v1/orgs/{org}/usage``)
    through the process's internal-API client. Idempotency keys derive from the flush's
    deduplication token, so a flush replayed after a crash, or a retried report, is
    counted once. Up to ``attempts`` tries (0.5 s, then 1 s apart) on network errors and
    5xx; a 4xx is not retried. After that the report is logged as lost (the events
    themselves are stored)."""

    def __init__(self, client: InternalClient, *, org_id: str, attempts: int = 3) -> None:
        self._client = client
        self._org_id = org_id
        self._retry = Retry(attempts=attempts, first_delay=0.5)

    async def record(self, usage: FlushUsage) -> None:
        now = dt.datetime.now(dt.UTC)
        counts = {Metric.EVENTS_INGESTED: usage.events, Metric.BYTES_INGESTED: usage.bytes}
        batch = UsageBatch(
            events=[
                UsageEvent(
                    metric=metric,
                    tenant=usage.tenant,
                    quantity=quantity,
                    timestamp=now,
                    # events_ingested -> ingest:<token>:events, bytes_ingested -> ...:bytes
                    idempotency_key=f"ingest:{usage.token}:{metric.removesuffix('_ingested')}",
                )
                for metric, quantity in counts.items()
            ]
        )
        try:
            await self._client.report_usage(self._org_id, batch, retry=self._retry)
        except Refused as exc:
            logger.warning("usage report refused: HTTP %d", exc.status)
        except Unavailable as exc:
            logger.error("usage of flush %s not reported: %s", usage.token, exc)
