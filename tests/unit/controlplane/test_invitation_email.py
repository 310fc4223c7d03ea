"""The invitation e-mail: the accept link carries the token in its fragment, and an
organisation name can never break out of the Subject line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from controlplane.orgs import invitation_email


def test_link_and_text() -> None:
    expires = datetime(2030, 1, 2, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    msg = invitation_email.message(
        to="ada@example.com",
        org_name="Acme",
        role="viewer",
        expires_at=expires,
        public_url="https://app.example.com/",
        token="tok_ABC-123",
    )
    body = msg.get_content()
    assert "https://app.example.com/invitations/accept#token=tok_ABC-123" in body
    assert "as viewer" in body
    assert "2030-01-02 02:05 UTC" in body  # shown in UTC
    assert msg["To"] == "ada@example.com"
    assert msg["Subject"] == "You are invited to join Acme on Tenantry"


def test_names_stay_on_one_header_line() -> None:
    msg = invitation_email.message(
        to="ada@example.com",
        org_name="Evil\u2028Bcc: victim@example.com\x85X",
        role="viewer",
        expires_at=datetime.now(UTC),
        public_url="https://app.example.com",
        token="t",
    )
    assert msg["Subject"] == "You are invited to join Evil Bcc: victim@example.com X on Tenantry"
    assert msg["Bcc"] is None
    wire = msg.as_bytes()
    assert b"\nBcc:" not in wire
