"""Notification e-mails to an organisation's owners, through the outbox
(``notification_emails``), to a real SMTP server on loopback (aiosmtpd): owners only,
retried while the mail server is down, left alone without an SMTP server."""

from __future__ import annotations

import email
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from controlplane.notifications import service as notifications
from controlplane.webhooks import service as webhooks
from tests.integration.controlplane.conftest import (
    LOCAL_WEBHOOKS,
    bearer,
    make_settings,
    new_org,
    serve,
    sign_up_and_login,
)
from tests.integration.controlplane.servers import free_port
from tests.support.wait import scaled, until

MAIL = {
    "smtp_host": "127.0.0.1",
    "smtp_from": "Tenantry <alerts@tenantry.test>",
    "smtp_starttls": False,
    "public_url": "https://app.tenantry.test",
    "smtp_timeout_seconds": 2.0,
}


@dataclass
class Inbox:
    port: int
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(  # aiosmtpd's hook: (server, session, envelope)
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        assert envelope.original_content is not None
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _start(handler: Inbox) -> Controller:
    controller = Controller(
        handler, hostname="127.0.0.1", port=handler.port, ready_timeout=scaled(60)
    )
    controller.start()
    return controller


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox(free_port())
    controller = _start(handler)
    try:
        yield handler
    finally:
        controller.stop()


async def _queue(database: str, org_id: str, subject: str) -> int:
    conn = await asyncpg.connect(database)
    try:
        async with conn.transaction():
            return await notifications.enqueue_emails(
                conn, org_id=uuid.UUID(org_id), subject=subject, lines=["line one", "line two"]
            )
    finally:
        await conn.close()


async def _emails(database: str) -> list[Any]:
    conn = await asyncpg.connect(database)
    try:
        return list(await conn.fetch("SELECT * FROM notification_emails ORDER BY id"))
    finally:
        await conn.close()


async def test_a_disabled_webhook_is_emailed_to_the_owners_only(
    database: str, redis_db: str, inbox: Inbox
) -> None:
    settings = make_settings(database, redis_db, **LOCAL_WEBHOOKS, **MAIL, smtp_port=inbox.port)
    async with serve(settings) as (_, http):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        viewer = await sign_up_and_login(http)
        r = await http.post(
            f"/v1/orgs/{org_id}/members",
            json={"email": viewer["email"], "role": "viewer"},
            headers=bearer(owner),
        )
        assert r.status_code == 201, r.text
        r = await http.post(
            f"/v1/orgs/{org_id}/webhooks",
            json={"url": f"http://127.0.0.1:{free_port()}/nobody"},
            headers=bearer(owner),
        )
        hook_id = r.json()["id"]
        conn = await asyncpg.connect(database)
        try:
            async with conn.transaction():
                await webhooks.enqueue(
                    conn, org_id=uuid.UUID(org_id), event_type="alert.firing", data={"id": 1}
                )
        finally:
            await conn.close()
        await until(lambda: inbox.received, what="the e-mail", timeout=60)
        ((to, message),) = inbox.received
        assert to == [owner["email"]]
        assert message["Subject"] == (
            "[Tenantry] Webhook to 127.0.0.1 disabled after failed deliveries"
        )
        assert f"/webhooks/{hook_id}/enable" in message.get_content()
        assert message["From"] == "Tenantry <alerts@tenantry.test>"
        (row,) = await _emails(database)
        assert row["state"] == "sent"
        assert row["tries"] == 1


async def test_a_mail_server_that_is_down_is_retried_until_it_answers(
    database: str, redis_db: str
) -> None:
    port = free_port()  # nothing listens here yet
    settings = make_settings(
        database,
        redis_db,
        **{**LOCAL_WEBHOOKS, "webhook_retry_schedule_seconds": [0.5] * 20},
        **MAIL,
        smtp_port=port,
    )
    async with serve(settings) as (_, http):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        assert await _queue(database, org_id, "FIRING: disk\r\nBcc: x@evil.test") == 1
        await until(
            lambda: _emails(database), what="a failed try", accept=lambda rows: rows[0]["tries"]
        )
        (row,) = await _emails(database)
        assert row["state"] == "pending"
        assert row["last_error"]
        handler = Inbox(port)
        controller = _start(handler)
        try:
            await until(lambda: handler.received, what="the e-mail", timeout=60)
        finally:
            controller.stop()
        ((to, message),) = handler.received
        assert to == [owner["email"]]  # the subject's line break added no recipient
        assert message["Subject"] == "[Tenantry] FIRING: disk Bcc: x@evil.test"
        assert message.get_content().splitlines() == ["line one", "line two"]
        (row,) = await _emails(database)
        assert row["state"] == "sent"
        assert row["tries"] >= 2


async def test_without_an_smtp_server_no_email_is_sent(database: str, redis_db: str) -> None:
    """A control plane without a mailer leaves queued e-mails alone (and its alert
    route queues none: ``test_webhook_alerts.py``)."""
    async with serve(make_settings(database, redis_db, **LOCAL_WEBHOOKS)) as (app, http):
        assert app.state.cp.mailer is None
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        await _queue(database, org_id, "queued by hand")
        await http.get("/healthz")
        (row,) = await _emails(database)
        assert row["state"] == "pending"
        assert row["tries"] == 0
