"""The hook through which ingestion reports usage to billing.

Billing (issue 5) does not exist yet; the writer calls `UsageSink.record` once
per successful flush (after the insert and the ack), with the counts of that
flush. `token` is the flush's ClickHouse deduplication token: a flush replayed
after a crash reports the same token again, so billing must treat it as an
idempotency key to count each event exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

import aiohttp

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
    """The default until billing exists: usage goes to the debug log."""

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
    with the internal token. Idempotency keys derive from the flush's deduplication
    token, so a flush replayed after a crash is counted once. A few bounded retries;
    after that the report is logged as lost (the events themselves are stored)."""

    def __init__(self, *, url: str, org_id: str, token: str, attempts: int = 3) -> None:
        self._url = f"{url}/v1/orgs/{org_id}/usage"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._attempts = attempts

    async def record(self, usage: FlushUsage) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        body = {
            "events": [
                {
                    "metric": "events_ingested",
                    "tenant": usage.tenant,
                    "quantity": usage.events,
                    "timestamp": now,
                    "idempotency_key": f"ingest:{usage.token}:events",
                },
                {
                    "metric": "bytes_ingested",
                    "tenant": usage.tenant,
                    "quantity": usage.bytes,
                    "timestamp": now,
                    "idempotency_key": f"ingest:{usage.token}:bytes",
                },
            ]
        }
        delay = 0.5
        timeout = aiohttp.ClientTimeout(total=10)
        for attempt in range(1, self._attempts + 1):
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as http,
                    http.post(self._url, json=body, headers=self._headers) as resp,
                ):
                    if resp.status < 300:
                        return
                    logger.warning("usage report refused: HTTP %d", resp.status)
                    if resp.status < 500:
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("usage report failed (attempt %d): %s", attempt, exc)
            await asyncio.sleep(delay)
            delay *= 2
        logger.error(
            "usage of flush %s not reported after %d attempts", usage.token, self._attempts
        )
