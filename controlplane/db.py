"""PostgreSQL access: the asyncpg pool and the migration runner.

Migrations are plain SQL files ``migrations/NNNN_name.sql`` applied in order, each in
its own transaction, under an advisory lock so that several replicas starting at once
apply them exactly once. The checksum of every applied file is recorded: editing a
migration that already ran is refused instead of silently diverging.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncpg

from controlplane.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 7_246_001  # arbitrary, constant: the advisory lock of the migration runner
ACQUIRE_TIMEOUT_SECONDS = 5.0
"""Longest wait for a free connection of the pool. With a server that stopped answering,
every pooled connection sits in a statement until its command timeout, and requests
queue for them; this bound makes each of them a 503 (``outages.py``) instead."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(folder: Path = MIGRATIONS) -> list[Migration]:
    """The migration files in order; a misnamed file or a duplicate version is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version:04d}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, folder: Path = MIGRATIONS) -> list[str]:
    """Apply pending migrations; return the names of those applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        done = {int(r["version"]): str(r["checksum"]) for r in rows}
        for mig in discover(folder):
            if mig.version in done:
                if done[mig.version] != mig.checksum:
                    raise RuntimeError(
                        f"migration {mig.version:04d}_{mig.name} was edited after it was "
                        "applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(mig.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    mig.version,
                    mig.name,
                    mig.checksum,
                )
            applied_now.append(f"{mig.version:04d}_{mig.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now


@asynccontextmanager
async def transaction(
    pool: asyncpg.Pool, *, acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside a transaction (a free one awaited at most
    ``acquire_timeout`` seconds).

    The pool hands out a proxy that forwards every call to its connection; typing it as
    the connection keeps repositories to one parameter type.
    """
    async with pool.acquire(timeout=acquire_timeout) as proxy, proxy.transaction():
        yield cast(asyncpg.Connection, proxy)


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection without a transaction: for a read that is one statement (or
    whose statements need not see one snapshot), outside the request's transaction."""
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as proxy:
        yield cast(asyncpg.Connection, proxy)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset round trip on release: the app changes no session state
    (statements run inside ``transaction`` or as single reads through ``connection``;
    no SET, LISTEN, cursors or session advisory locks on pooled connections), so there
    is nothing to reset."""


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """The request pool: each new connection and each statement bounded by the
    settings' timeouts, so a server that is down or stopped answering costs a request
    seconds at most (``outages.py``)."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        reset=_no_reset,
        timeout=settings.db_connect_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
    )
    assert pool is not None
    return pool


async def ping(pool: asyncpg.Pool) -> bool:
    async with connection(pool) as conn:
        return bool(await conn.fetchval("SELECT true"))


async def check_alive(conn: asyncpg.Connection) -> None:
    """Raise unless ``conn`` answers within 5 seconds."""
    await conn.fetchval("SELECT 1", timeout=5.0)


async def migrate_url(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
