"""The control plane under a PostgreSQL or a Redis outage, with requests coming in.

Each test runs the app on a PostgreSQL and a Redis of this module's own (the session's
servers stay untouched), sends a steady mix of requests from the test (about 60 per
second: reads served from memory, reads and writes that need PostgreSQL, sign-ins,
liveness and readiness; with the local cluster, Tenant reads from the mirror too), and
takes one dependency away for a few seconds: PostgreSQL stopped by its PID and started
again on the same port and data, or paused (SIGSTOP to the postmaster and each of its
backends); Redis paused with SIGSTOP. A paused server is one that stopped answering:
only the client's timeouts end the waits. What must hold (``controlplane/outages.py``):

- every answer is a success or a 503 with ``Retry-After`` in the one error shape, never
  a 500, and none waits for the drivers' default timeouts;
- the reads the bounded-staleness policy covers keep succeeding during the outage
  (the caller's organisation and Tenant, confirmed just before it); sign-ins, and
  whatever needs the missing server itself, are refused;
- ``/healthz`` stays 200 and ``/readyz`` says which dependency is down;
- ``tenantry_dependency_unavailable_total`` counts the 503s by dependency;
- every write acknowledged with a 2xx is there after the outage;
- once the server is back, requests of every kind succeed again within 5 s (the
  issue's bound), and go on succeeding.

The app runs in the test's process (httpx's ASGI transport, the real lifespan), except
in the last test, which checks the same answers and the scrape of the internal metrics
port on ``tenantry controlplane serve`` itself. Run with ``-s`` to see, per load test,
the answers by kind and status during the outage, the slowest answer and the recovery
time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.exceptions
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from controlplane import db, outages
from controlplane.app import create_app
from controlplane.settings import Settings
from tests.integration.controlplane.conftest import (
    PASSWORD,
    bearer,
    make_settings,
    new_org,
    serve,
    sign_up_and_login,
)
from tests.integration.controlplane.processes import control_plane_process
from tests.integration.controlplane.servers import Postgres, RedisServer, free_port
from tests.support.kube import Kube
from tests.support.wait import scaled, until

RATE = 60  # requests per second, all kinds together
BEFORE = 1.0  # seconds of load before the outage
OUTAGE = 4.0  # seconds the dependency is away
RECOVERY_BOUND = 5.0  # seconds from the server back to requests succeeding (issue 18)
# No answer may take longer than this (scaled): the drivers' defaults would be far
# longer (redis-py: 5 s per attempt, ten retries; asyncpg: no command timeout at all).
SLOWEST_ANSWER = 15.0


@dataclass
class Servers:
    """This module's own servers: the tests take them away."""

    postgres: Postgres
    redis: RedisServer
    folder: Path

    def stop_postgres(self) -> None:
        self.postgres.stop(grace=scaled(30))

    def start_postgres(self) -> None:
        """Again on the same data and port (the clients' URL)."""
        port = self.postgres.port
        self.postgres = Postgres.start(self.folder, timeout=scaled(60), port=port)

    def pause_postgres(self) -> None:
        """SIGSTOP to the postmaster, then to each of its children (backends, the
        background processes): each runs in a session of its own, so a signal to the
        server's process group would not reach them."""
        postmaster = self.postgres.process.pid
        os.kill(postmaster, signal.SIGSTOP)  # first: it starts no new child meanwhile
        for pid in _children(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume_postgres(self) -> None:
        postmaster = self.postgres.process.pid
        for pid in _children(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        os.kill(postmaster, signal.SIGCONT)

    def resume_redis(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.redis.process.pid, signal.SIGCONT)


def _children(parent: int) -> list[int]:
    """The PIDs whose parent is ``parent`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    # Not under pytest's tmp_path: that folder is private to root, and the server runs
    # as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="tenantry-outage-pg-"))
    redis = RedisServer.start(tmp_path_factory.mktemp("outage-redis"), timeout=scaled(60))
    try:
        held = Servers(Postgres.start(folder, timeout=scaled(120)), redis, folder)
        try:
            yield held
        finally:
            held.resume_postgres()
            held.postgres.stop(grace=scaled(30))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(redis.process.pid, signal.SIGCONT)
        redis.stop(grace=scaled(10))
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def outage_db(servers: Servers) -> str:
    name = f"outage_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(servers.postgres.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return servers.postgres.url(name)


@dataclass
class Answer:
    kind: str
    started: float
    took: float
    status: int
    headers: httpx.Headers
    body: Any
    created: str | None = None  # the org a 201 acknowledged


@dataclass
class Load:
    """Requests at ``RATE`` per second, each in its own task (an open loop: a slow
    answer does not slow the others down), until stopped."""

    http: httpx.AsyncClient
    user: dict[str, str]
    org: str
    tenant: str | None = None  # with one: its reads, served from the Kubernetes mirror
    answers: list[Answer] = field(default_factory=list)

    def _requests(self) -> list[tuple[str, Callable[[], Awaitable[httpx.Response]]]]:
        auth = {"Authorization": self.user["Authorization"]}

        def create() -> Awaitable[httpx.Response]:
            slug = f"w{uuid.uuid4().hex[:12]}"
            return self.http.post("/v1/orgs", json={"slug": slug, "name": slug}, headers=auth)

        def login() -> Awaitable[httpx.Response]:
            return self.http.post(
                "/v1/auth/login", json={"email": self.user["email"], "password": PASSWORD}
            )

        def mirror() -> Awaitable[httpx.Response]:
            return self.http.get(f"/v1/orgs/{self.org}/tenants/{self.tenant}", headers=auth)

        return [
            *([("mirror read", mirror)] if self.tenant else []),
            ("cached read", lambda: self.http.get(f"/v1/orgs/{self.org}", headers=auth)),
            ("login", login),
            ("database read", lambda: self.http.get("/v1/orgs", headers=auth)),
            ("write", create),
            ("liveness", lambda: self.http.get("/healthz")),
            ("readiness", lambda: self.http.get("/readyz")),
        ]

    async def _one(self, kind: str, send: Callable[[], Awaitable[httpx.Response]]) -> None:
        started = time.monotonic()
        r = await send()
        took = time.monotonic() - started
        json = r.headers.get("content-type", "").startswith("application/json")
        body: Any = r.json() if json else r.text
        created = body["id"] if kind == "write" and r.status_code == 201 else None
        self.answers.append(Answer(kind, started, took, r.status_code, r.headers, body, created))

    async def run(self, stop: asyncio.Event) -> None:
        requests = self._requests()
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        begin = time.monotonic()
        while not stop.is_set():
            kind, send = requests[n % len(requests)]
            task = asyncio.create_task(self._one(kind, send))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            delay = begin + n / RATE - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
        async with asyncio.timeout(scaled(SLOWEST_ANSWER) * 2):
            await asyncio.gather(*tasks)


def _is_unavailable(a: Answer) -> bool:
    """A 503 in the one error shape, with Retry-After."""
    error = a.body.get("error") if isinstance(a.body, dict) else None
    return (
        a.status == 503
        and isinstance(error, dict)
        and error.get("code") == "unavailable"
        and bool(error.get("message"))
        and error.get("requestId") == a.headers.get("x-request-id")
        and a.headers.get("retry-after") == str(outages.RETRY_AFTER_SECONDS)
    )


def _metric(
    app: FastAPI, dependency: str, name: str = "tenantry_dependency_unavailable_total"
) -> float:
    value = app.state.cp.metrics.registry.get_sample_value(name, {"dependency": dependency})
    return float(value or 0.0)


@contextlib.asynccontextmanager
async def _app(
    database: str, redis_url: str, **settings: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serve(make_settings(database, redis_url, **settings)) as (app, http):
        state = app.state.cp

        async def caches_on() -> bool:
            return bool(state.access.enabled and state.auth.sessions._cache.enabled)

        await until(caches_on, what="the access and session caches subscribed")
        yield app, http


@dataclass(frozen=True)
class Timeline:
    down: float  # the dependency is away (stopped, paused)
    coming_back: float  # it is being started or resumed
    up: float  # it is back (accepts connections, runs)

    def inside(self, a: Answer) -> bool:
        """Sent once the server was away, answered before it was coming back."""
        return self.down <= a.started and a.started + a.took <= self.coming_back

    def during(self, answers: list[Answer], kind: str) -> list[Answer]:
        """The answers of ``kind`` to requests wholly inside the outage."""
        return [a for a in answers if a.kind == kind and self.inside(a)]


async def _under_load(
    http: httpx.AsyncClient,
    *,
    outage: Callable[[], None],
    back: Callable[[], None],
    seconds: float = OUTAGE,
    tenant: bool = False,
) -> tuple[Load, Timeline]:
    """The load before, during and after an outage (``tenant``: with reads of a Tenant
    created for it, from the Kubernetes mirror)."""
    user = await sign_up_and_login(http)
    org = await new_org(http, user)
    name = None
    if tenant:
        name = "t1"
        created = await http.post(
            f"/v1/orgs/{org}/tenants", json={"name": name}, headers=bearer(user)
        )
        assert created.status_code == 201, created.text
    load = Load(http, user, org, name)
    for kind, send in load._requests():  # warm: the caches hold this caller's access
        await load._one(kind, send)
    assert {a.status for a in load.answers} <= {200, 201}, [a.body for a in load.answers]
    load.answers.clear()

    stop = asyncio.Event()
    running = asyncio.create_task(load.run(stop))
    brought_back = False
    try:
        await asyncio.sleep(BEFORE)
        await asyncio.to_thread(outage)
        down = time.monotonic()
        await asyncio.sleep(seconds)
        coming_back = time.monotonic()
        brought_back = True
        await asyncio.to_thread(back)
        up = time.monotonic()
        await asyncio.sleep(scaled(RECOVERY_BOUND) + 1.0)  # long enough to see recovery
    finally:
        if not brought_back:
            await asyncio.to_thread(back)
        stop.set()
        await running
    when = Timeline(down, coming_back, up)
    seen: dict[tuple[str, int], int] = {}
    for a in load.answers:
        if when.inside(a):
            seen[a.kind, a.status] = seen.get((a.kind, a.status), 0) + 1
    slowest = max(a.took for a in load.answers)
    print(
        f"\n{len(load.answers)} answers, the slowest in {slowest:.2f} s; during the outage"
        f" (kind, status): {sorted(seen.items())}"
    )
    return load, when


def _all(answers: list[Answer], holds: Callable[[Answer], bool], what: str) -> None:
    """There are answers, and ``holds`` for each."""
    assert answers, f"no answer to look at: {what}"
    failing = [(a.status, a.body) for a in answers if not holds(a)]
    assert not failing, f"{what}: {failing[:3]}"


def _ok(a: Answer) -> bool:
    return a.status in (200, 201)


def _check_answers(load: Load, when: Timeline, *, dependency: str) -> None:
    """No 500, no hang, and what the outage refuses is a 503 in the one shape."""
    bad = [
        (a.kind, a.status, a.body)
        for a in load.answers
        if a.status not in (200, 201)
        and not (a.kind == "readiness" and a.status == 503)
        and not _is_unavailable(a)
    ]
    assert not bad, f"answers neither a success nor a 503 for the outage: {bad[:5]}"
    slowest = max(load.answers, key=lambda a: a.took)
    assert slowest.took < scaled(SLOWEST_ANSWER), (slowest.kind, slowest.took)

    _all(when.during(load.answers, "liveness"), _ok, "liveness stays up")
    _all(
        when.during(load.answers, "readiness"),
        lambda a: (
            a.status == 503
            and a.body["checks"][dependency] is False
            and bool(a.headers.get("retry-after"))
        ),
        f"readiness says {dependency} is down",
    )
    # Signing in needs both servers (the account, the per-IP limit and the new session).
    _all(when.during(load.answers, "login"), _is_unavailable, "sign-in refused")
    # Bounded staleness: the caller's read of its organisation, confirmed just before
    # the outage, is still served from what the caches hold.
    _all(when.during(load.answers, "cached read"), _ok, "cached reads served")


def _check_recovery(load: Load, when: Timeline) -> float:
    """Seconds from the server back to the first request of each kind that began after
    it and succeeded, as did every later one of its kind; fails past the bound."""
    worst = 0.0
    for kind in ("cached read", "database read", "write", "login", "readiness"):
        after = sorted(
            (a for a in load.answers if a.kind == kind and a.started >= when.up),
            key=lambda a: a.started,
        )
        assert after, f"no {kind} after the outage"
        ok_from = None  # when the last run of successes began
        for a in reversed(after):
            if not _ok(a):
                break
            ok_from = a.started
        assert ok_from is not None, f"{kind} never recovered: {[x.status for x in after]}"
        worst = max(worst, ok_from - when.up)
    assert worst < scaled(RECOVERY_BOUND), f"recovery took {worst:.2f} s"
    print(f"recovered {worst:.2f} s after the server was back")
    return worst


def _check_counted(app: FastAPI, load: Load, *, dependency: str) -> None:
    refused = sum(1 for a in load.answers if _is_unavailable(a))
    assert refused > 0
    assert _metric(app, dependency) == refused
    other = outages.REDIS if dependency == outages.POSTGRES else outages.POSTGRES
    assert _metric(app, other) == 0


async def _check_writes(http: httpx.AsyncClient, database: str, load: Load) -> None:
    """Every organisation whose creation was acknowledged (201) exists."""
    acknowledged = {a.created for a in load.answers if a.created is not None}
    assert acknowledged, "no write was acknowledged around the outage"
    listed = await http.get("/v1/orgs", headers={"Authorization": load.user["Authorization"]})
    assert listed.status_code == 200
    assert acknowledged <= {o["id"] for o in listed.json()}
    conn = await asyncpg.connect(database)
    try:
        stored = {str(r["id"]) for r in await conn.fetch("SELECT id FROM orgs")}
    finally:
        await conn.close()
    assert acknowledged <= stored


async def _check_postgres_outage(
    app: FastAPI, http: httpx.AsyncClient, database: str, load: Load, when: Timeline
) -> None:
    _check_answers(load, when, dependency=outages.POSTGRES)
    # What needs PostgreSQL and is not a cached read is refused, writes included.
    for kind in ("database read", "write"):
        _all(when.during(load.answers, kind), _is_unavailable, f"{kind} refused")
    _check_recovery(load, when)
    _check_counted(app, load, dependency=outages.POSTGRES)
    await _check_writes(http, database, load)


async def test_postgres_stopped_and_started_again(servers: Servers, outage_db: str) -> None:
    # The key ring is due for a reload every second: what verifies during the outage is
    # the ring kept for KEY_STALENESS_SECONDS (auth/keys.py).
    async with _app(outage_db, servers.redis.url, key_refresh_seconds=1) as (app, http):
        load, when = await _under_load(
            http, outage=servers.stop_postgres, back=servers.start_postgres
        )
        await _check_postgres_outage(app, http, outage_db, load, when)
        # A stopped server ends the access cache's LISTEN at once: from then on each
        # cached read is authorised from what the cache kept, and counted so.
        stale = _metric(app, outages.POSTGRES, "tenantry_stale_reads_total")
        assert stale >= len(when.during(load.answers, "cached read")) > 0
        assert _metric(app, outages.REDIS, "tenantry_stale_reads_total") == 0


async def test_redis_paused_and_resumed(servers: Servers, outage_db: str) -> None:
    pid = servers.redis.process.pid
    async with _app(outage_db, servers.redis.url) as (app, http):
        load, when = await _under_load(
            http,
            outage=lambda: os.kill(pid, signal.SIGSTOP),
            back=servers.resume_redis,
        )
        _check_answers(load, when, dependency=outages.REDIS)
        # What needs PostgreSQL only keeps working for a session the caches know.
        _all(when.during(load.answers, "database read"), _ok, "database reads served")
        _check_recovery(load, when)
        _check_counted(app, load, dependency=outages.REDIS)
        await _check_writes(http, outage_db, load)


async def test_postgres_paused_and_resumed(servers: Servers, outage_db: str) -> None:
    """A server that stopped answering (SIGSTOP): only the timeouts end the waits. The
    command timeout is set low so that the outage can stay short: a request waits for a
    free connection (at most db.ACQUIRE_TIMEOUT_SECONDS), then for its statement."""
    command_timeout = 2.0
    async with _app(
        outage_db,
        servers.redis.url,
        db_command_timeout_seconds=command_timeout,
        key_refresh_seconds=1,  # as in test_postgres_stopped_and_started_again
    ) as (app, http):
        try:
            load, when = await _under_load(
                http,
                outage=servers.pause_postgres,
                back=servers.resume_postgres,
                # long enough for requests to be answered (refused) inside it
                seconds=db.ACQUIRE_TIMEOUT_SECONDS + 2 * command_timeout + 2.0,
            )
        finally:
            servers.resume_postgres()
        await _check_postgres_outage(app, http, outage_db, load, when)


async def test_tenant_reads_from_the_mirror_survive_both_outages(
    servers: Servers, outage_db: str, crds: Kube
) -> None:
    """The reads the README promises from the Tenant mirror: authorised from the
    caches, answered from the mirror, so neither outage stops them."""
    async with _app(
        outage_db, servers.redis.url, kube_enabled=True, kubeconfig=str(crds.kubeconfig)
    ) as (_, http):
        pid = servers.redis.process.pid
        for dependency, outage, back in (
            (outages.REDIS, lambda: os.kill(pid, signal.SIGSTOP), servers.resume_redis),
            (outages.POSTGRES, servers.stop_postgres, servers.start_postgres),
        ):
            load, when = await _under_load(http, outage=outage, back=back, tenant=True)
            _check_answers(load, when, dependency=dependency)
            _all(when.during(load.answers, "mirror read"), _ok, "mirror reads served")
            assert all(a.body["name"] == "t1" for a in load.answers if a.kind == "mirror read")
            _check_recovery(load, when)
            await _check_writes(http, outage_db, load)


async def test_an_outage_reached_through_another_type_is_still_a_503(settings: Settings) -> None:
    """What http_errors has no handler of its own for (here a RuntimeError raised from a
    Redis error) goes to the catch-all handler, outside the middlewares: still a 503
    with Retry-After, logged and counted as the outage it is."""
    app = create_app(settings)

    async def wrapped() -> None:
        try:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        except redis.exceptions.ConnectionError as err:
            raise RuntimeError("while reading the session") from err

    app.add_api_route("/outage-probe", wrapped)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://cp.test") as http,
    ):
        r = await http.get("/outage-probe")
        assert r.status_code == 503
        assert r.headers["retry-after"] == str(outages.RETRY_AFTER_SECONDS)
        assert r.json()["error"]["code"] == "unavailable"
        assert _metric(app, outages.REDIS) == 1
        counted = app.state.cp.metrics.registry.get_sample_value(
            "tenantry_http_requests_total",
            {"method": "GET", "route": "/outage-probe", "status": "503"},
        )
        assert counted == 1


async def test_the_served_process_answers_and_counts_a_redis_outage(
    servers: Servers, outage_db: str, tmp_path: Path
) -> None:
    """``tenantry controlplane serve`` (uvicorn, the internal metrics listener in
    multiprocess mode) with Redis paused: sign-in is a 503 with Retry-After, readiness
    says Redis is down, liveness holds, and the scrape counts the refusals."""
    metrics_port = free_port()
    pid = servers.redis.process.pid
    async with (
        control_plane_process(
            database=outage_db,
            redis=servers.redis.url,
            kubeconfig=None,
            extra_env={"TENANTRY_CP_METRICS_PORT": str(metrics_port)},
            log=tmp_path / "serve.log",
        ) as served,
        httpx.AsyncClient(base_url=served.url, timeout=scaled(SLOWEST_ANSWER)) as http,
    ):
        login = {"email": "nobody@example.com", "password": PASSWORD}
        os.kill(pid, signal.SIGSTOP)
        try:
            refused = [await http.post("/v1/auth/login", json=login) for _ in range(3)]
            ready = await http.get("/readyz")
            alive = await http.get("/healthz")
        finally:
            servers.resume_redis()
        for r in refused:
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == str(outages.RETRY_AFTER_SECONDS)
            assert r.json()["error"]["code"] == "unavailable"
            assert r.json()["error"]["requestId"] == r.headers["x-request-id"]
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] is False
        assert alive.status_code == 200

        async def scraped() -> float:
            text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            return samples[("tenantry_dependency_unavailable_total", (("dependency", "redis"),))]

        await until(scraped, accept=lambda n: n == len(refused), what="the 503s counted")

        async def ready_again() -> int:
            return (await http.get("/readyz")).status_code

        await until(
            ready_again, accept=lambda s: s == 200, timeout=RECOVERY_BOUND, what="ready again"
        )
