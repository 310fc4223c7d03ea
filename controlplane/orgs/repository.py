"""SQL of organisations and memberships."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class OrgRow:
    id: uuid.UUID
    slug: str
    name: str
    plan: str
    created_at: datetime


@dataclass(frozen=True)
class MemberRow:
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    created_at: datetime


def _org(r: asyncpg.Record) -> OrgRow:
    return OrgRow(r["id"], r["slug"], r["name"], r["plan"], r["created_at"])


async def insert(conn: asyncpg.Connection, *, slug: str, name: str, plan: str) -> OrgRow | None:
    r = await conn.fetchrow(
        "INSERT INTO orgs (slug, name, plan) VALUES ($1, $2, $3) ON CONFLICT (slug) DO NOTHING "
        "RETURNING id, slug, name, plan, created_at",
        slug,
        name,
        plan,
    )
    return _org(r) if r else None


async def membership(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[OrgRow, str] | None:
    r = await conn.fetchrow(
        "SELECT o.id, o.slug, o.name, o.plan, o.created_at, m.role FROM orgs o "
        "JOIN memberships m ON m.org_id = o.id WHERE o.id = $1 AND m.user_id = $2",
        org_id,
        user_id,
    )
    return (_org(r), str(r["role"])) if r else None


async def of_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[tuple[OrgRow, str]]:
    rows = await conn.fetch(
        "SELECT o.id, o.slug, o.name, o.plan, o.created_at, m.role FROM orgs o "
        "JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 ORDER BY o.slug",
        user_id,
    )
    return [(_org(r), str(r["role"])) for r in rows]


async def update_name(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> None:
    await conn.execute("UPDATE orgs SET name = $2 WHERE id = $1", org_id, name)


async def delete(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM orgs WHERE id = $1", org_id)


async def members(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[MemberRow]:
    rows = await conn.fetch(
        "SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m "
        "JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY u.email_norm",
        org_id,
    )
    return [MemberRow(r["id"], r["email"], r["name"], r["role"], r["created_at"]) for r in rows]


async def member(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> MemberRow | None:
    r = await conn.fetchrow(
        "SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m "
        "JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2",
        org_id,
        user_id,
    )
    return MemberRow(r["id"], r["email"], r["name"], r["role"], r["created_at"]) if r else None


async def add_member(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> bool:
    status = await conn.execute(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        org_id,
        user_id,
        role,
    )
    return str(status).endswith(" 1")


async def set_role(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> None:
    await conn.execute(
        "UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2",
        org_id,
        user_id,
        role,
    )


async def remove_member(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id
    )


async def count_role(conn: asyncpg.Connection, org_id: uuid.UUID, role: str) -> int:
    """Members holding ``role``; locks the org's memberships so two removals can't race."""
    await conn.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", org_id)
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = $2", org_id, role
        )
    )


@dataclass(frozen=True)
class InvitationRow:
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


_INV = "id, org_id, email_norm, role, created_at, expires_at"


def _invitation(r: asyncpg.Record) -> InvitationRow:
    return InvitationRow(
        r["id"], r["org_id"], r["email_norm"], r["role"], r["created_at"], r["expires_at"]
    )


async def insert_invitation(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    email: str,
    role: str,
    token_hash: bytes,
    invited_by: uuid.UUID,
    expires_at: datetime,
) -> InvitationRow | None:
    """A new open invitation; None when one is already open for this e-mail."""
    r = await conn.fetchrow(
        "INSERT INTO invitations (org_id, email_norm, role, token_hash, invited_by, expires_at)"  # noqa: S608
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (org_id, email_norm) WHERE accepted_at IS NULL AND revoked_at IS NULL"
        f" DO NOTHING RETURNING {_INV}",
        org_id,
        email.lower(),
        role,
        token_hash,
        invited_by,
        expires_at,
    )
    return _invitation(r) if r else None


async def open_invitations(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[InvitationRow]:
    rows = await conn.fetch(
        f"SELECT {_INV} FROM invitations WHERE org_id = $1"  # noqa: S608
        " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
        " ORDER BY created_at",
        org_id,
    )
    return [_invitation(r) for r in rows]


async def revoke_invitation(
    conn: asyncpg.Connection, org_id: uuid.UUID, invitation_id: uuid.UUID
) -> bool:
    status = await conn.execute(
        "UPDATE invitations SET revoked_at = now() WHERE id = $1 AND org_id = $2"
        " AND accepted_at IS NULL AND revoked_at IS NULL",
        invitation_id,
        org_id,
    )
    return str(status).endswith(" 1")


async def claim_invitation(
    conn: asyncpg.Connection, *, token_hash: bytes, email: str, user_id: uuid.UUID
) -> InvitationRow | None:
    """Mark the open, unexpired invitation for ``email`` with this token accepted."""
    r = await conn.fetchrow(
        "UPDATE invitations SET accepted_at = now(), accepted_by = $3"  # noqa: S608
        " WHERE token_hash = $1 AND email_norm = $2 AND accepted_at IS NULL"
        f" AND revoked_at IS NULL AND expires_at > now() RETURNING {_INV}",
        token_hash,
        email.lower(),
        user_id,
    )
    return _invitation(r) if r else None
