"""The access cache (controlplane/rbac/access_cache.py) against real PostgreSQL: what a
change to members and roles does to what other processes have cached, and what
happens when the listening connection is lost."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from controlplane import background
from controlplane.rbac import access_cache
from controlplane.rbac.access_cache import AccessCache
from controlplane.settings import Settings
from tests.integration.controlplane.conftest import (
    bearer,
    new_org,
    serve,
    sign_up_and_login,
)
from tests.support.wait import scaled, until


@contextlib.asynccontextmanager
async def listening(database: str, *, first_delay: float = 0.1) -> AsyncIterator[AccessCache[str]]:
    """A cache as one process has it: listening on its own connection. Entries never
    expire during a test (max_age), so only a notification can make the cache forget."""
    cache: AccessCache[str] = AccessCache(first_delay=first_delay, max_age=3600)
    task = asyncio.create_task(cache.run(access_cache.listener(database, ping_every=0.5)))
    try:
        await until(lambda: cache.enabled, what="the cache listening")
        yield cache
    finally:
        assert await background.stop(task, within=scaled(10), what="access cache")


async def _role_of(conn: asyncpg.Connection, org: uuid.UUID, user: uuid.UUID) -> str | None:
    role = await conn.fetchval(
        "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2", org, user
    )
    return None if role is None else str(role)


@pytest.fixture
async def member(database: str) -> AsyncIterator[tuple[asyncpg.Connection, uuid.UUID, uuid.UUID]]:
    """A connection, and an organisation with one viewer (written as SQL, like any writer)."""
    conn = await asyncpg.connect(database)
    org = await conn.fetchval(
        "INSERT INTO orgs (slug, name) VALUES ($1, 'Acme') RETURNING id", uuid.uuid4().hex[:12]
    )
    user = await conn.fetchval(
        "INSERT INTO users (email, email_norm, password_hash) VALUES ($1, $1, 'x') RETURNING id",
        f"{uuid.uuid4().hex[:8]}@example.com",
    )
    await conn.execute(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'viewer')", org, user
    )
    try:
        yield conn, org, user
    finally:
        await conn.close(timeout=scaled(30))


def counting(load: Callable[[], Awaitable[str | None]]) -> tuple[list[int], Any]:
    calls = [0]

    async def wrapped() -> str | None:
        calls[0] += 1
        return await load()

    return calls, wrapped


async def test_a_change_committed_anywhere_reaches_every_process(
    database: str, member: tuple[asyncpg.Connection, uuid.UUID, uuid.UUID]
) -> None:
    conn, org, user = member
    async with listening(database) as one, listening(database) as two:
        for cache in (one, two):
            calls, load = counting(lambda: _role_of(conn, org, user))
            assert await cache.get(org, user, load) == "viewer"
            assert await cache.get(org, user, load) == "viewer"
            assert calls == [1], "the second read came from the cache"
        async with conn.transaction():
            await conn.execute(
                "UPDATE memberships SET role = 'admin' WHERE org_id = $1 AND user_id = $2",
                org,
                user,
            )
            await asyncio.sleep(0.2)
            assert len(one) == len(two) == 1, "nothing is forgotten before the commit"
        await until(lambda: len(one) == len(two) == 0, what="both caches told")
        assert await one.get(org, user, lambda: _role_of(conn, org, user)) == "admin"
        # A custom role's permissions and the organisation itself count as changes too.
        await conn.execute(
            "INSERT INTO org_roles (org_id, name, permissions) VALUES ($1, 'ops', '{}')", org
        )
        await until(lambda: len(one) == 0, what="the change announced")
        await one.get(org, user, lambda: _role_of(conn, org, user))
        await conn.execute("UPDATE orgs SET plan = 'growth' WHERE id = $1", org)
        await until(lambda: len(one) == 0, what="the change announced")
        await one.get(org, user, lambda: _role_of(conn, org, user))
        await conn.execute("DELETE FROM users WHERE id = $1", user)  # cascades to memberships
        await until(lambda: len(one) == 0, what="the change announced")
        assert await one.get(org, user, lambda: _role_of(conn, org, user)) is None


async def test_other_organisations_stay_cached(
    database: str, member: tuple[asyncpg.Connection, uuid.UUID, uuid.UUID]
) -> None:
    conn, org, user = member
    other = uuid.uuid4()
    async with listening(database) as cache:
        await cache.get(org, user, lambda: _role_of(conn, org, user))
        await cache.get(other, user, _constant("owner"))
        await conn.execute(
            "UPDATE memberships SET role = 'editor' WHERE org_id = $1 AND user_id = $2", org, user
        )
        await until(lambda: len(cache) == 1, what="only the changed organisation forgotten")
        calls, load = counting(_constant("changed"))
        assert await cache.get(other, user, load) == "owner"
        assert calls == [0]


def _constant(value: str | None) -> Callable[[], Awaitable[str | None]]:
    async def load() -> str | None:
        return value

    return load


async def test_without_its_connection_the_cache_is_off_then_starts_empty(
    database: str, member: tuple[asyncpg.Connection, uuid.UUID, uuid.UUID]
) -> None:
    conn, org, user = member
    async with listening(database, first_delay=1.0) as cache:  # off for 1 s when lost
        await cache.get(org, user, lambda: _role_of(conn, org, user))
        assert len(cache) == 1
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        assert killed == 1
        await until(lambda: not cache.enabled, what="the cache off")
        assert len(cache) == 0
        # While it is off, a change that nobody announces to it is still seen: every
        # request reads the database.
        await conn.execute(
            "UPDATE memberships SET role = 'owner' WHERE org_id = $1 AND user_id = $2", org, user
        )
        assert not cache.enabled
        assert await cache.get(org, user, lambda: _role_of(conn, org, user)) == "owner"
        assert len(cache) == 0, "nothing is kept while notifications may be missed"
        await until(lambda: cache.enabled, what="the cache back on")
        assert cache.connections == 2
        calls, load = counting(lambda: _role_of(conn, org, user))
        assert await cache.get(org, user, load) == "owner"
        assert await cache.get(org, user, load) == "owner"
        assert calls == [1], "cached again once the connection is back"


async def test_a_change_during_a_read_is_not_hidden_by_the_older_answer() -> None:
    cache: AccessCache[str] = AccessCache()
    cache.enabled = True
    org, user = uuid.uuid4(), uuid.uuid4()

    async def read_then_changed() -> str:
        answer = "viewer"  # what the database said...
        cache.notified(str(org))  # ...while a change committed and was announced
        return answer

    assert await cache.get(org, user, read_then_changed) == "viewer"
    assert len(cache) == 0


async def test_role_changes_apply_to_the_next_request(settings: Settings) -> None:
    """Through the API, in one process: demoting a member takes effect at once."""
    async with serve(settings) as (_, http):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        admin = await sign_up_and_login(http)
        r = await http.post(
            f"/v1/orgs/{org_id}/members",
            json={"email": admin["email"], "role": "admin"},
            headers=bearer(owner),
        )
        assert r.status_code == 201, r.text
        admin_id = r.json()["user_id"]
        assert (await _audit(http, org_id, admin)).status_code == 200
        for _ in range(20):  # no waiting between the change and the next request
            r = await http.patch(
                f"/v1/orgs/{org_id}/members/{admin_id}",
                json={"role": "billing"},
                headers=bearer(owner),
            )
            assert r.status_code == 200, r.text
            assert (await _audit(http, org_id, admin)).status_code == 403
            r = await http.patch(
                f"/v1/orgs/{org_id}/members/{admin_id}",
                json={"role": "admin"},
                headers=bearer(owner),
            )
            assert (await _audit(http, org_id, admin)).status_code == 200
        r = await http.delete(f"/v1/orgs/{org_id}/members/{admin_id}", headers=bearer(owner))
        assert r.status_code == 204, r.text
        assert (await _audit(http, org_id, admin)).status_code == 404


async def _audit(http: httpx.AsyncClient, org_id: str, who: dict[str, str]) -> httpx.Response:
    """A read that admins may do and the billing role may not (audit:read)."""
    return await http.get(f"/v1/orgs/{org_id}/audit", headers=bearer(who))
