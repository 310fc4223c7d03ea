"""Fixtures for the control-plane integration tests: real PostgreSQL, Redis and (for the
tenant and dashboard routes) the local Kubernetes API server with the CRDs.

Each test module that needs a clean database asks for ``database`` (a fresh database
per test, created from the migrated template in ~30 ms). Apps are driven through
httpx's ASGI transport with the real lifespan, so pool, Redis and key ring are the
production code paths.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from controlplane import db
from controlplane.app import create_app
from controlplane.settings import Settings
from tests.integration.controlplane.servers import Postgres, RedisServer
from tests.support.kube import Kube
from tests.support.wait import scaled

PASSWORD = "correct horse battery staple"
# The app stops its two caches' tasks and closes Kubernetes, Redis and the pool, each
# within app.SHUTDOWN_STEP_SECONDS: five steps, and some room.
SHUTDOWN_CEILING = 60
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    # Not under pytest's tmp_path: that folder is private to root, and the server runs
    # as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="tenantry-pg-"))
    try:
        server = Postgres.start(folder, timeout=scaled(120))  # stops what it started if not
        try:
            yield server
        finally:
            server.stop(grace=scaled(30))  # by its PID: SIGINT, deadline, SIGKILL
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.start(tmp_path_factory.mktemp("redis"), timeout=scaled(60))
    try:
        yield server
    finally:
        server.stop(grace=scaled(10))


@pytest.fixture(scope="session")
async def template_db(postgres: Postgres) -> str:
    """A migrated database used as the template of each test's database."""
    admin = await asyncpg.connect(postgres.admin_url)
    try:
        await admin.execute("CREATE DATABASE cp_template")
    finally:
        await admin.close(timeout=scaled(30))
    conn = await asyncpg.connect(postgres.url("cp_template"))
    try:
        await db.migrate(conn)
    finally:
        await conn.close(timeout=scaled(30))
    return "cp_template"


@pytest.fixture
async def database(postgres: Postgres, template_db: str) -> str:
    """A fresh, migrated database for one test; returns its URL."""
    name = f"cp_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(postgres.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close(timeout=scaled(30))
    return postgres.url(name)


@pytest.fixture
async def redis_db(redis_server: RedisServer) -> str:
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    return redis_server.url


def make_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "kube_enabled": False,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "rate_limit_per_ip": 1000,
        "rate_limit_per_identity": 1000,
        "rate_limit_panel_queries_per_org": 100_000,
        "issuer": "https://cp.test",
        "db_pool_max": 4,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client talking to it in-process.

    The app's shutdown bounds each of its steps itself (controlplane/background.py); the
    deadline here turns a regression into this test's failure instead of a hang."""
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    async with asyncio.timeout(scaled(120)):
        await lifespan.__aenter__()
    try:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cp.test") as client:
            yield app, client
    finally:
        try:
            async with asyncio.timeout(scaled(SHUTDOWN_CEILING)):
                await lifespan.__aexit__(None, None, None)
        except TimeoutError:
            raise AssertionError(
                f"the app's shutdown took over {scaled(SHUTDOWN_CEILING):g} s"
            ) from None


@pytest.fixture
def settings(database: str, redis_db: str) -> Settings:
    return make_settings(database, redis_db)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as (_, http):
        yield http


@pytest.fixture
async def kube_client(database: str, redis_db: str, crds: Kube) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database, redis_db, kube_enabled=True, kubeconfig=str(Path(crds.kubeconfig))
    )
    async with serve(settings) as (_, http):
        yield http


async def sign_up_and_login(http: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """A new account; returns its bearer headers (plus 'email' and 'refresh')."""
    email = email or f"user{next(_counter)}-{uuid.uuid4().hex[:6]}@example.com"
    r = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    tokens = r.json()
    return {
        "Authorization": f"Bearer {tokens['access_token']}",
        "email": email,
        "refresh": tokens["refresh_token"],
    }


def bearer(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": user["Authorization"]}


async def new_org(http: httpx.AsyncClient, owner: dict[str, str], slug: str | None = None) -> str:
    slug = slug or f"o{uuid.uuid4().hex[:10]}"
    r = await http.post("/v1/orgs", json={"slug": slug, "name": slug}, headers=bearer(owner))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


LOCAL_WEBHOOKS = {
    "webhook_allow_http": True,
    "webhook_allow_private_targets": True,
    "webhook_poll_seconds": 0.05,
    "webhook_timeout_seconds": 1.0,
    "webhook_retry_schedule_seconds": [0.2, 0.2],
}
"""Webhook settings of a local run: http:// and loopback targets, fast retries."""


@pytest.fixture
async def local(database: str, redis_db: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a local run for webhooks (``LOCAL_WEBHOOKS``)."""
    async with serve(make_settings(database, redis_db, **LOCAL_WEBHOOKS)) as (_, http):
        yield http
