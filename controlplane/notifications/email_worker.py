"""Sending the queued notification e-mails (``notification_emails``, migration 0105).

Run by the background sender (``controlplane/notifications/worker.py``) at each turn
when an SMTP server is configured: claim due e-mails (FOR UPDATE SKIP LOCKED and a
lease, so processes never send one twice at once), send each with the invitation
mailer (``controlplane/mail.py``), and record the outcome: sent, or retried on the
webhook retry schedule, or, after its last try, failed. The error kept is the
mailer's, which never quotes the message or the server's reply.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import asyncpg

from controlplane import db
from controlplane.mail import Mailer, MailError
from controlplane.notifications import repository

log = logging.getLogger("tenantry.controlplane.notifications")


async def turn(pool: asyncpg.Pool, mailer: Mailer, *, schedule: list[float], batch: int) -> int:
    """Claim and send one batch of due e-mails; returns how many were claimed."""
    async with db.transaction(pool) as conn:
        claimed = await repository.claim_emails(
            conn, limit=batch, lease_seconds=mailer.timeout + 30
        )
    await asyncio.gather(*(_send(pool, mailer, c, schedule=schedule) for c in claimed))
    return len(claimed)


async def _send(
    pool: asyncpg.Pool, mailer: Mailer, claimed: repository.ClaimedEmail, *, schedule: list[float]
) -> None:
    message = EmailMessage()
    message["To"] = claimed.recipient
    message["Subject"] = claimed.subject
    message.set_content(claimed.body)
    error: str | None = None
    try:
        await mailer.send(message, to=claimed.recipient)
    except MailError as exc:
        error = str(exc)
    except ValueError as exc:  # an address or header the e-mail library refuses
        error = type(exc).__name__
    tries = claimed.tries + 1
    async with db.transaction(pool) as conn:
        if error is None:
            await repository.finish_email(conn, claimed.id, state="sent", tries=tries, error=None)
        elif tries <= len(schedule):
            await repository.finish_email(
                conn,
                claimed.id,
                state="pending",
                tries=tries,
                error=error,
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=schedule[tries - 1]),
            )
        else:
            await repository.finish_email(
                conn, claimed.id, state="failed", tries=tries, error=error
            )
            log.warning(
                "notification e-mail %s failed after %d tries: %s", claimed.id, tries, error
            )
