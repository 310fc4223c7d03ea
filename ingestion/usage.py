"""The hook through which ingestion reports usage to billing.

Billing (issue 5) does not exist yet; the writer calls `UsageSink.record` once
per successful flush (after the insert and the ack), with the counts of that
flush. `token` is the flush's ClickHouse deduplication token: a flush replayed
after a crash reports the same token again, so billing must treat it as an
idempotency key to count each event exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlushUsage:
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
