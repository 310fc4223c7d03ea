"""Invitation e-mails, delivered to a real SMTP server on loopback (aiosmtpd): sent after
the commit with the accept link and token, not sent when SMTP is not configured, and a
mail server that is down costs the e-mail, never the invitation or a token in the logs."""

from __future__ import annotations

import email
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from controlplane.settings import Settings
from tests.integration.controlplane.conftest import (
    bearer,
    make_settings,
    new_org,
    serve,
    sign_up_and_login,
)
from tests.integration.controlplane.servers import free_port
from tests.support.wait import scaled

PUBLIC_URL = "https://app.tenantry.test"
SMTP_USER, SMTP_PASSWORD = "mailer", "mail-password-1"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    invitations_committed: int
    """Invitations another connection could see while the message was being delivered."""


@dataclass
class Inbox:
    """The SMTP server's handler: keeps what it receives; requires AUTH."""

    database: str
    port: int = 0
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_DATA(  # aiosmtpd's hook: (server, session, envelope)
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        conn = await asyncpg.connect(self.database)
        try:
            committed = int(await conn.fetchval("SELECT count(*) FROM invitations"))
        finally:
            await conn.close(timeout=scaled(30))
        assert envelope.original_content is not None
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, committed)
        )
        return "250 OK"

    def authenticate(  # aiosmtpd's authenticator: (server, session, envelope, mechanism, data)
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        ok = (data.login, data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
        return AuthResult(success=ok)


@pytest.fixture
def inbox(database: str) -> Iterator[Inbox]:
    handler = Inbox(database, port=free_port())
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=handler.port,
        authenticator=handler.authenticate,
        auth_required=True,
        auth_require_tls=False,
        ready_timeout=scaled(60),  # aiosmtpd's own default is 5 s
    )
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def smtp_settings(database: str, redis_db: str, port: int) -> Settings:
    return make_settings(
        database,
        redis_db,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="Tenantry <invitations@tenantry.test>",
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_starttls=False,
        public_url=PUBLIC_URL + "/",
    )


async def _invite(http: httpx.AsyncClient, owner: dict[str, str], org_id: str) -> httpx.Response:
    return await http.post(
        f"/v1/orgs/{org_id}/invitations",
        json={"email": "New.Person@example.com", "role": "editor"},
        headers=bearer(owner),
    )


async def _accept(http: httpx.AsyncClient, token: str) -> httpx.Response:
    invitee = await sign_up_and_login(http, email="new.person@example.com")
    return await http.post("/v1/invitations/accept", json={"token": token}, headers=bearer(invitee))


async def test_invitation_is_emailed_after_commit(
    database: str, redis_db: str, inbox: Inbox
) -> None:
    async with serve(smtp_settings(database, redis_db, inbox.port)) as (_, http):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        r = await http.patch(
            f"/v1/orgs/{org_id}", json={"name": "Acme Ünited"}, headers=bearer(owner)
        )
        assert r.status_code == 200, r.text
        r = await _invite(http, owner, org_id)
        assert r.status_code == 201, r.text
        created = r.json()
        assert (created["email_sent"], created["email_delivery"]) == (True, "sent")
        token = created["token"]

        (mail,) = inbox.received
        assert inbox.logins == [(SMTP_USER.encode(), SMTP_PASSWORD.encode())]
        assert mail.mail_from == "invitations@tenantry.test"
        assert mail.rcpt_tos == ["new.person@example.com"]
        assert mail.message["To"] == "new.person@example.com"
        assert mail.message["From"] == "Tenantry <invitations@tenantry.test>"
        assert mail.message["Subject"] == "You are invited to join Acme Ünited on Tenantry"
        assert mail.message["Message-ID"].endswith("@tenantry.test>")
        body = mail.message.get_content()
        link = f"{PUBLIC_URL}/invitations/accept#token={token}"
        assert link in body
        assert "editor" in body
        # Delivered after the commit: another connection already saw the invitation.
        assert mail.invitations_committed == 1

        # The link's token is the invitation's: the invitee joins with it.
        found = re.search(r"#token=([A-Za-z0-9_-]+)", body)
        assert found is not None
        r = await _accept(http, found.group(1))
        assert r.status_code == 200, r.text
        assert (r.json()["id"], r.json()["role"]) == (org_id, "editor")


async def test_nothing_is_sent_without_smtp(client: httpx.AsyncClient, inbox: Inbox) -> None:
    owner = await sign_up_and_login(client)
    org_id = await new_org(client, owner)
    r = await _invite(client, owner, org_id)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["email_sent"], created["email_delivery"]) == (False, "not_configured")
    assert len(created["token"]) > 20
    assert inbox.received == []
    assert inbox.logins == []


async def test_mail_server_down_keeps_the_invitation_and_the_token_out_of_logs(
    database: str, redis_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    nobody_listens = free_port()
    async with serve(smtp_settings(database, redis_db, nobody_listens)) as (_, http):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        r = await _invite(http, owner, org_id)
        assert r.status_code == 201, r.text
        created = r.json()
        assert (created["email_sent"], created["email_delivery"]) == (False, "failed")
        token = created["token"]
        listed = (await http.get(f"/v1/orgs/{org_id}/invitations", headers=bearer(owner))).json()
        assert [i["id"] for i in listed] == [created["id"]]
        r = await _accept(http, token)
        assert r.status_code == 200, r.text

    (warning,) = [r for r in caplog.records if r.getMessage() == "invitation e-mail not sent"]
    assert warning.levelno == logging.WARNING
    assert warning.__dict__["invitation_id"] == created["id"]
    assert warning.__dict__["mail_error"] == "SMTPConnectError"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert token not in logged
