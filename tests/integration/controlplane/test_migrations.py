"""Migrations: `tenantry controlplane migrate` applies the SQL files once, in order, and
refuses a migration that was edited after it ran."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from controlplane import db
from tests.integration.controlplane.servers import Postgres
from tests.support.wait import scaled


async def _empty_database(postgres: Postgres) -> str:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close(timeout=scaled(30))
    return postgres.url(name)


def _migrate_cli(url: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "tenantry_cli", "controlplane", "migrate"],
        env={**os.environ, "TENANTRY_CP_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(120),
    ).stdout


async def test_cli_applies_each_migration_once(postgres: Postgres) -> None:
    url = await _empty_database(postgres)
    first = await asyncio.to_thread(_migrate_cli, url)
    names = [f"{m.version:04d}_{m.name}" for m in db.discover()]
    assert [line.removeprefix("applied ") for line in first.splitlines()[:-1]] == names
    second = await asyncio.to_thread(_migrate_cli, url)
    assert second.strip() == "database is up to date"
    conn = await asyncpg.connect(url)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
    finally:
        await conn.close(timeout=scaled(30))
    assert sorted(versions) == [m.version for m in db.discover()]


async def test_edited_migrations_are_refused(postgres: Postgres, tmp_path: Path) -> None:
    url = await _empty_database(postgres)
    (tmp_path / "0001_t.sql").write_text("CREATE TABLE t (x int);")
    conn = await asyncpg.connect(url)
    try:
        assert await db.migrate(conn, tmp_path) == ["0001_t"]
        (tmp_path / "0002_u.sql").write_text("CREATE TABLE u (x int);")
        assert await db.migrate(conn, tmp_path) == ["0002_u"]
        (tmp_path / "0001_t.sql").write_text("CREATE TABLE t (x bigint);")
        with pytest.raises(RuntimeError, match="edited after it was applied"):
            await db.migrate(conn, tmp_path)
        # A failing migration leaves nothing behind.
        (tmp_path / "0001_t.sql").write_text("CREATE TABLE t (x int);")
        (tmp_path / "0003_bad.sql").write_text("CREATE TABLE v (x int); SELECT nonsense;")
        with pytest.raises(asyncpg.PostgresError):
            await db.migrate(conn, tmp_path)
        assert await conn.fetchval("SELECT to_regclass('v')") is None
    finally:
        await conn.close(timeout=scaled(30))


async def test_custom_roles_granting_the_retired_billing_write_get_billing_manage(
    postgres: Postgres, tmp_path: Path
) -> None:
    """0101: PUT /billing (billing:write) was retired in favour of subscriptions."""
    url = await _empty_database(postgres)
    before = [m for m in db.discover() if m.version < 101]
    for mig in before:
        (tmp_path / f"{mig.version:04d}_{mig.name}.sql").write_text(mig.sql)
    conn = await asyncpg.connect(url)
    try:
        await db.migrate(conn, tmp_path)
        org = await conn.fetchval("INSERT INTO orgs (slug, name) VALUES ('o', 'o') RETURNING id")
        for name, perms in (
            ("a", ["billing:write", "tenants:read"]),
            ("b", ["billing:write", "billing:manage"]),
            ("c", ["tenants:read"]),
        ):
            await conn.execute(
                "INSERT INTO org_roles (org_id, name, permissions) VALUES ($1, $2, $3)",
                org,
                name,
                perms,
            )
        assert "0101_retire_billing_write" in await db.migrate(conn)
        rows = await conn.fetch("SELECT name, permissions FROM org_roles ORDER BY name")
    finally:
        await conn.close(timeout=scaled(30))
    assert {r["name"]: r["permissions"] for r in rows} == {
        "a": ["billing:manage", "tenants:read"],
        "b": ["billing:manage"],
        "c": ["tenants:read"],
    }
