"""Operational routes: liveness and readiness.

``/healthz`` says the process serves; ``/readyz`` says it can do its job (PostgreSQL,
Redis and, when configured, the Kubernetes API answer), so a load balancer stops
sending traffic to a replica that lost a dependency. Liveness touches no dependency on
purpose: a PostgreSQL or Redis outage must not make Kubernetes restart every replica
(which would only add cold starts to the outage). The checks run side by side, each
within ``CHECK_SECONDS``, so a server that stopped answering makes ``/readyz`` slow by
that much at most; a not-ready answer carries ``Retry-After`` like the API's 503s
(``outages.py``). Prometheus metrics are not here: they are served on the internal port
only (``metrics_listener.py``).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from controlplane import db, outages
from controlplane.deps import State
from controlplane.rbac.dependencies import Public

router = APIRouter(tags=["ops"])
CHECK_SECONDS = 2.0


@router.get("/healthz", dependencies=[Depends(Public("liveness probe"))])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(coro: object) -> bool:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return bool(await coro)  # type: ignore[misc]
    except Exception:
        return False


@router.get("/readyz", dependencies=[Depends(Public("readiness probe"))])
async def readyz(state: State) -> JSONResponse:
    probes = {
        outages.POSTGRES: _check(db.ping(state.pool)),
        outages.REDIS: _check(state.redis.ping()),
    }
    if state.kube is not None:
        probes["kubernetes"] = _check(state.kube.ping())
    answers = await asyncio.gather(*probes.values())
    checks = dict(zip(probes, answers, strict=True))
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": str(outages.RETRY_AFTER_SECONDS)},
    )
