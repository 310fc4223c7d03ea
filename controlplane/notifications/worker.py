"""The control plane's background sender: one loop per process, started with the app.

Each turn, in this order:

- every ``usage_check_seconds``, organisations that reached 80 % or 100 % of their plan's
  monthly events are told once per period (``billing.service.usage_thresholds``: a
  notice, their webhooks' ``usage.threshold``, their owners by e-mail);
- when an SMTP server is configured, a batch of due notification e-mails
  (``email_worker``);
- a batch of due webhook deliveries (``controlplane.webhooks.worker``).

It sleeps ``webhook_poll_seconds`` after a turn that found less than a full batch of
either. A failing turn is logged (the exception's type only: a message could quote a
row) and the loop goes on: what failed keeps its lease and is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import asyncpg
import httpx

from controlplane import background, db
from controlplane.billing import service as billing
from controlplane.mail import Mailer
from controlplane.notifications import email_worker
from controlplane.settings import Settings
from controlplane.webhooks.worker import DeliveryWorker

log = logging.getLogger("tenantry.controlplane.notifications")


class NotificationWorker:
    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, mailer: Mailer | None = None
    ) -> None:
        self.pool = pool
        self.mailer = mailer
        self.deliveries = DeliveryWorker(pool, settings, email=mailer is not None)
        self.poll = settings.webhook_poll_seconds
        self.batch = settings.webhook_batch
        self.usage_every = settings.usage_check_seconds
        self.usage_due = 0.0  # time.monotonic() of the next usage check

    async def run(self) -> None:
        """Turn until cancelled; a failing database is logged and retried."""
        async with self.deliveries.client() as client:
            while True:
                background.check_cancelled()
                try:
                    sent = await self.turn(client)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the loop must outlive any failure
                    log.warning("notification turn failed: %s", type(exc).__name__)
                    sent = 0
                if sent < self.batch:
                    await asyncio.sleep(self.poll)

    async def turn(self, client: httpx.AsyncClient) -> int:
        """One turn; returns the larger of the e-mails and the deliveries claimed."""
        if time.monotonic() >= self.usage_due:
            self.usage_due = time.monotonic() + self.usage_every
            async with db.transaction(self.pool) as conn:
                await billing.usage_thresholds(
                    conn, now=datetime.now(UTC), email=self.mailer is not None
                )
        emails = 0
        if self.mailer is not None:
            emails = await email_worker.turn(
                self.pool,
                self.mailer,
                schedule=self.deliveries.schedule,
                batch=self.batch,
            )
        return max(await self.deliveries.turn(client), emails)
