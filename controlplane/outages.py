"""PostgreSQL and Redis outages: how the control plane recognises and answers them.

The control plane cannot do its job without PostgreSQL (users, organisations, roles,
audit) and Redis (sessions, refresh families, rate limits). When either is down, a
request that needs it must fail fast and say so in a way clients and load balancers
act on, never as a 500 that looks like a bug and is retried blindly:

- **Recognised by class, in one place** (``dependency_of``). The drivers raise many
  types: redis-py wraps everything in ``redis.exceptions.ConnectionError`` or
  ``TimeoutError``; asyncpg raises ``PostgresConnectionError`` (SQLSTATE class 08),
  ``CannotConnectNowError``/``AdminShutdownError`` while the server starts or stops,
  ``TooManyConnectionsError``, a plain ``InterfaceError`` on a closed connection or
  pool, and bare ``OSError``/``TimeoutError`` from its connect and its
  ``command_timeout``. A bare ``OSError`` or ``TimeoutError`` is attributed to the
  driver whose code raised it (the innermost asyncpg or redis frame of its traceback),
  so one from elsewhere (a Kubernetes call, a mail server) is never mistaken for an
  outage. The cause and context chain is followed too.
- **Answered as a 503** (``http_errors`` registers these classes): code
  ``unavailable`` in the one error shape, ``Retry-After: RETRY_AFTER_SECONDS``, and a
  message that names no server, address or driver text. The dependency is logged and
  counted (``tenantry_dependency_unavailable_total{dependency}``, observability.py);
  reads served under the policy below are counted too
  (``tenantry_stale_reads_total{dependency}``).
- **Fast**: every wait on either server is bounded by a setting
  (``TENANTRY_CP_DB_CONNECT_TIMEOUT_SECONDS``, ``…_DB_COMMAND_TIMEOUT_SECONDS``,
  ``…_REDIS_TIMEOUT_SECONDS``; a free pool connection is awaited at most
  ``db.ACQUIRE_TIMEOUT_SECONDS``), and redis-py retries a failed command once, without
  backoff (its default is ten retries with backoff, seconds per request).
- **Readiness** (``/readyz``) reports each dependency and answers 503 while one is
  down; liveness (``/healthz``) touches neither, so an outage never restarts the pods.

**Degradation policy for reads: bounded staleness, reads only.** Two per-process caches
spare authenticated requests a round trip: active session families (Redis) and
members' access (PostgreSQL), each kept current by its own invalidation channel
(``invalidated_cache.py``). While a channel is live its cache answers every request,
as it always has: the channel would carry any change, and while the server is down
nobody can make one. Once a channel is lost, the cache serves nothing from memory and
every request asks the source. When the source itself cannot be reached then, a *read*
(GET, HEAD) whose token verifies is served from what the source last confirmed,
provided that is at most the cache's ``max_age`` old (30 s for sessions, 60 s for
access); anything else, and every write, is a 503. The signing keys are kept likewise
for at most ``KEY_STALENESS_SECONDS`` past their due reload. So during an outage the
reads served from memory (an organisation, the Tenant and Dashboard reads from the
Kubernetes mirror) keep working for callers active just before it, and nothing is
decided on older knowledge than that; a read that needs the missing server itself is a
503.

The security trade-off, stated: a session revoked (logout, refresh-token reuse) or a
membership removed *by another replica* while this one cannot reach the store can
still read, through this replica, for at most that window (30 s, 60 s), and write only
until this replica notices the lost channel (its keep-alive ping: at most 10 s for
Redis, 15 s for PostgreSQL). A revocation cannot happen at all while the store is down for everyone
(it is a write to that store), so the window matters only for a partial outage (a
partition between replicas and the store). Failing closed instead would turn every
short Redis or PostgreSQL blip into an outage of the whole API, including the reads
that need neither.
"""

from __future__ import annotations

import asyncpg
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from controlplane.errors import Unavailable
from controlplane.settings import Settings

POSTGRES = "postgres"
REDIS = "redis"
DEPENDENCIES = (POSTGRES, REDIS)
RETRY_AFTER_SECONDS = 2
"""What a 503 for an outage tells clients to wait: a restart of either server or a
failover takes seconds, and the control plane is back within a second of it."""
KEY_STALENESS_SECONDS = 60.0
"""How long past its due reload the signing-key ring is trusted while PostgreSQL is
unreachable (``auth/keys.py``)."""
SAFE_METHODS = frozenset({"GET", "HEAD"})
"""The requests the bounded-staleness policy may serve from memory."""

# The exception classes that mean "the server cannot be used now" (see above).
_REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # also BusyLoadingError (a restart loading data)
    redis.exceptions.TimeoutError,
)
_POSTGRES_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
# Types that are an outage only when a driver raised them (bare socket errors and
# timeouts), and asyncpg's InterfaceError, whose plain form says "connection is
# closed" or "pool is closing" (its subclasses are misuse: bad data, configuration).
_RAISED_BY_DRIVER: tuple[type[BaseException], ...] = (OSError, TimeoutError)
_MAX_CHAIN = 8
HANDLED: tuple[type[Exception], ...] = (
    redis.exceptions.RedisError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,  # TimeoutError too
)
"""The exception classes ``http_errors`` hands to ``dependency_of``; what it does not
recognise among them is still an unexpected error (500)."""


class DependencyUnavailable(Unavailable):
    """PostgreSQL or Redis could not be used: 503 with ``Retry-After``."""

    def __init__(self, dependency: str) -> None:
        super().__init__(
            "a service the control plane depends on is unavailable; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        self.dependency = dependency


def _driver_of(exc: BaseException) -> str | None:
    """The driver (``POSTGRES``, ``REDIS``) whose code raised ``exc``, if any: the
    innermost frame of either package in its traceback."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        package = module.partition(".")[0]
        if package == "asyncpg":
            found = POSTGRES
        elif package == "redis":
            found = REDIS
        tb = tb.tb_next
    return found


def _classify(exc: BaseException) -> str | None:
    if isinstance(exc, DependencyUnavailable):
        return exc.dependency
    if isinstance(exc, _REDIS_DOWN):
        return REDIS
    if isinstance(exc, _POSTGRES_DOWN) or type(exc) is asyncpg.InterfaceError:
        return POSTGRES
    if isinstance(exc, _RAISED_BY_DRIVER):
        return _driver_of(exc)
    return None


def dependency_of(exc: BaseException) -> str | None:
    """``POSTGRES`` or ``REDIS`` when ``exc`` (or what caused it) says that server
    cannot be used now; None for every other error."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < _MAX_CHAIN:
        found = _classify(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def redis_client(settings: Settings) -> Redis:
    """The control plane's Redis client: every connect and command bounded by
    ``redis_timeout_seconds``, and a failed command retried once (a pooled connection
    that died with a server restart is replaced) without backoff."""
    timeout = settings.redis_timeout_seconds
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )
