"""Outgoing e-mail over SMTP (aiosmtplib), for invitations.

One connection per message: invitations are rare, and a connection kept open would
have to survive the relay's idle timeouts. The envelope recipients are given explicitly,
never parsed from the headers, so an odd but valid address in ``To`` cannot add
recipients. Failures come back as one ``MailError`` that names the kind of failure and
never the message (which may hold a token) or the server's reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from controlplane.settings import Settings


class MailError(Exception):
    """A message was not handed to the SMTP server; ``str()`` is safe to log."""


@dataclass(frozen=True)
class Mailer:
    host: str
    port: int
    sender: str
    """The From header (``Name <address>`` or an address)."""
    username: str | None
    password: str | None = field(repr=False)
    starttls: bool
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer | None:
        """The configured mailer, or None when no SMTP server is set."""
        if not settings.smtp_host:
            return None
        assert settings.smtp_from is not None  # Settings checks it comes with smtp_host
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )

    @property
    def envelope_sender(self) -> str:
        return parseaddr(self.sender)[1]

    async def send(self, message: EmailMessage, *, to: str) -> None:
        """Deliver ``message`` to ``to``, adding From, Date and Message-ID; raises
        ``MailError``."""
        message["From"] = self.sender
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.envelope_sender.rpartition("@")[2])
        try:
            await aiosmtplib.send(
                message,
                sender=self.envelope_sender,
                recipients=[to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                use_tls=False,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"{type(exc).__name__} {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            # ValueError: a message or address the server or library cannot carry.
            raise MailError(type(exc).__name__) from None
