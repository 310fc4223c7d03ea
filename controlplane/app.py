"""The application factory.

``create_app(settings)`` wires everything explicitly: the lifespan opens the PostgreSQL
pool (applying migrations first when configured), Redis, the signing-key ring and the
Kubernetes client, and closes them in reverse order, each step with a deadline
(``background.py``). Nothing is global, so tests can run several apps side by side
against their own servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from controlplane import background, console, db, http_errors, ops, outages
from controlplane.apikeys.router import internal_router as apikeys_internal_router
from controlplane.apikeys.router import router as apikeys_router
from controlplane.audit.router import router as audit_router
from controlplane.auth import crypto, revocation
from controlplane.auth.keys import KeyRing
from controlplane.auth.repository import SessionStore
from controlplane.auth.revocation import ActiveFamilies
from controlplane.auth.router import router as auth_router
from controlplane.auth.service import Auth
from controlplane.billing.router import internal_router as billing_internal_router
from controlplane.billing.router import router as billing_router
from controlplane.bodylimit import BodyLimitMiddleware
from controlplane.context import Membership
from controlplane.dashboards.router import router as dashboards_router
from controlplane.deps import AppState
from controlplane.internal import ListenerGuard
from controlplane.kube import KubeResources
from controlplane.mail import Mailer
from controlplane.notifications.router import internal_router as notifications_internal_router
from controlplane.notifications.router import router as notifications_router
from controlplane.notifications.worker import NotificationWorker
from controlplane.observability import Metrics, ObservabilityMiddleware, configure_logging
from controlplane.orgs.router import invitations_router
from controlplane.orgs.router import router as orgs_router
from controlplane.ratelimit import RateLimiter
from controlplane.rbac import access_cache
from controlplane.rbac.access_cache import AccessCache
from controlplane.rbac.router import router as rbac_router
from controlplane.settings import Settings
from controlplane.tenants.router import router as tenants_router
from controlplane.users.router import router as users_router
from controlplane.webhooks.router import router as webhooks_router

# Hot paths first: a request is matched against the routes in this order (FastAPI tries
# them one by one, a few microseconds each), and the SaaS UI's reads of tenants and
# dashboards and the ingestion pods' key checks are most of the traffic. The order
# cannot change which route answers: no path and method is matched by routes of two
# routers (tests/unit/controlplane/test_routes.py).
ROUTERS = (
    tenants_router,
    dashboards_router,
    apikeys_internal_router,
    apikeys_router,
    orgs_router,
    rbac_router,
    audit_router,
    billing_router,
    billing_internal_router,
    notifications_router,
    notifications_internal_router,
    webhooks_router,
    users_router,
    invitations_router,
    auth_router,
    ops.router,
)
# Each step of the lifespan's shutdown (stopping a cache's task, closing a client or the
# pool) ends within this many seconds, whatever the other side does.
SHUTDOWN_STEP_SECONDS = 5.0


def from_environment() -> FastAPI:
    """The app with settings from the environment (the uvicorn factory for workers)."""
    configure_logging()
    return create_app(Settings())


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await db.migrate_url(settings.database_url)
        pool = await db.create_pool(settings)
        redis = outages.redis_client(settings)
        kube = (
            KubeResources.connect(settings.kubeconfig, watch=settings.kube_watch)
            if settings.kube_enabled
            else None
        )
        access: AccessCache[Membership] = AccessCache(
            on_stale=metrics.stale_reads.labels(outages.POSTGRES).inc
        )
        listening = asyncio.create_task(access.run(access_cache.listener(settings.database_url)))
        # sessions known active, invalidated by pub/sub
        families = ActiveFamilies(on_stale=metrics.stale_reads.labels(outages.REDIS).inc)
        following = asyncio.create_task(families.run(revocation.subscriber(redis)))
        try:
            if kube is not None:
                await kube.start()
            keys = KeyRing(pool, settings)
            await keys.ensure_active()
            auth = Auth(
                keys=keys,
                sessions=SessionStore(
                    redis,
                    ttl=settings.refresh_token_ttl_seconds,
                    code_ttl=settings.auth_code_ttl_seconds,
                    cache=families,
                ),
                hasher=crypto.password_hasher(
                    time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
                ),
            )
            app.state.cp = AppState(
                settings=settings,
                pool=pool,
                redis=redis,
                auth=auth,
                kube=kube,
                metrics=metrics,
                limiter=RateLimiter(redis, settings),
                mailer=Mailer.from_settings(settings),
                access=access,
            )
            delivering = asyncio.create_task(
                NotificationWorker(pool, settings, app.state.cp.mailer).run()
            )
            try:
                yield
            finally:
                await background.stop(
                    delivering, within=SHUTDOWN_STEP_SECONDS, what="notifications and webhooks"
                )
        finally:
            # Every step has a deadline: a shutdown that waits on a stuck task or peer
            # would hang the worker (and a test's teardown) forever (background.py).
            await background.stop(listening, within=SHUTDOWN_STEP_SECONDS, what="access cache")
            await background.stop(following, within=SHUTDOWN_STEP_SECONDS, what="session cache")
            if kube is not None:
                await background.bounded(
                    kube.close(), within=SHUTDOWN_STEP_SECONDS, what="Kubernetes client close"
                )
            await background.bounded(
                redis.aclose(), within=SHUTDOWN_STEP_SECONDS, what="Redis close"
            )
            if not await background.bounded(
                pool.close(), within=SHUTDOWN_STEP_SECONDS, what="PostgreSQL pool close"
            ):
                pool.terminate()

    app = FastAPI(
        title="Tenantry control plane",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    http_errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    if settings.console_dir is not None:
        app.include_router(console.router(settings.console_dir))
    # Innermost of ours: its 413 still gets the request id, the access log and CORS.
    app.add_middleware(
        BodyLimitMiddleware,
        default=settings.max_body_bytes,
        large=settings.max_large_body_bytes,
        routes=app.routes,
    )
    app.add_middleware(ListenerGuard, internal_port=settings.internal_port)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app
