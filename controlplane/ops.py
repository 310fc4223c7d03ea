"""Operational routes: liveness and readiness.

``/healthz`` says the process serves; ``/readyz`` says it can do its job (PostgreSQL,
Redis and, when configured, the Kubernetes API answer), so a load balancer stops
sending traffic to a replica that lost a dependency. Prometheus metrics are not here:
they are served on the internal port only (``metrics_listener.py``).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from controlplane import db
from controlplane.deps import State
from controlplane.rbac.dependencies import Public

router = APIRouter(tags=["ops"])


@router.get("/healthz", dependencies=[Depends(Public("liveness probe"))])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(coro: object) -> bool:
    try:
        async with asyncio.timeout(2):
            return bool(await coro)  # type: ignore[misc]
    except Exception:
        return False


@router.get("/readyz", dependencies=[Depends(Public("readiness probe"))])
async def readyz(state: State) -> JSONResponse:
    checks = {
        "postgres": await _check(db.ping(state.pool)),
        "redis": await _check(state.redis.ping()),
    }
    if state.kube is not None:
        checks["kubernetes"] = await _check(state.kube.ping())
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
