"""SQL for the ``users`` table (the only module that touches it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class UserRow:
    id: uuid.UUID
    email: str
    name: str
    password_hash: str
    disabled: bool
    created_at: datetime


def _row(r: asyncpg.Record) -> UserRow:
    return UserRow(
        id=r["id"],
        email=r["email"],
        name=r["name"],
        password_hash=r["password_hash"],
        disabled=r["disabled"],
        created_at=r["created_at"],
    )


_COLS = "id, email, name, password_hash, disabled, created_at"


async def insert(
    conn: asyncpg.Connection, *, email: str, name: str, password_hash: str
) -> UserRow | None:
    """Insert a user; None when the e-mail is taken."""
    r = await conn.fetchrow(
        f"INSERT INTO users (email, email_norm, name, password_hash) VALUES ($1, $2, $3, $4) "  # noqa: S608
        f"ON CONFLICT (email_norm) DO NOTHING RETURNING {_COLS}",
        email,
        email.lower(),
        name,
        password_hash,
    )
    return _row(r) if r else None


async def by_email(conn: asyncpg.Connection, email: str) -> UserRow | None:
    r = await conn.fetchrow(
        f"SELECT {_COLS} FROM users WHERE email_norm = $1",  # noqa: S608
        email.lower(),
    )
    return _row(r) if r else None


async def by_id(conn: asyncpg.Connection, user_id: uuid.UUID) -> UserRow | None:
    r = await conn.fetchrow(f"SELECT {_COLS} FROM users WHERE id = $1", user_id)  # noqa: S608
    return _row(r) if r else None


async def update_name(conn: asyncpg.Connection, user_id: uuid.UUID, name: str) -> None:
    await conn.execute("UPDATE users SET name = $2 WHERE id = $1", user_id, name)


async def update_password_hash(conn: asyncpg.Connection, user_id: uuid.UUID, hashed: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, hashed)
