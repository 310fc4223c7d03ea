"""The invitation e-mail (pure: no I/O).

The link is ``<public_url>/invitations/accept#token=<token>``: the web UI's accept page
reads the token from the fragment, has the person sign in or sign up with the invited
address, and posts it to ``POST /v1/invitations/accept``. A fragment is never sent to a
server, so the token stays out of web-server and proxy logs and Referer headers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

ACCEPT_PATH = "/invitations/accept"


def accept_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{ACCEPT_PATH}#token={token}"


def _one_line(text: str) -> str:
    """Printable text on one line: a name is safe in a header and can't fake a line."""
    return "".join(c if c.isprintable() else " " for c in text).strip()


def message(
    *,
    to: str,
    org_name: str,
    role: str,
    expires_at: datetime,
    public_url: str,
    token: str,
) -> EmailMessage:
    """The e-mail for one invitation (the mailer adds From, Date and Message-ID)."""
    org = _one_line(org_name)
    link = accept_link(public_url, token)
    msg = EmailMessage()
    msg["Subject"] = f"You are invited to join {org} on Tenantry"
    msg["To"] = to
    expires = expires_at.astimezone(UTC)
    msg.set_content(
        f"You have been invited to join the organisation {org} on Tenantry as {role}.\n\n"
        "To accept, open this link and sign in (or sign up) with this e-mail address:\n\n"
        f"{link}\n\n"
        f"The invitation works once and expires on {expires:%Y-%m-%d %H:%M} UTC.\n"
        "If you did not expect it, ignore this message.\n"
    )
    return msg
