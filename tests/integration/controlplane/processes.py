"""The control plane as its own process (`tenantry controlplane serve`), for the tests
that run the product the way it is deployed: separate processes talking over HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantry_dev import services
from tests.integration.controlplane.servers import free_port
from tests.support.wait import scaled, stop_process

INTERNAL_TOKEN = "internal-test-token-0123456789"


def spawn_cli(args: list[str], *, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``tenantry <args>`` as a child process."""
    return subprocess.Popen([sys.executable, "-m", "tenantry_cli", *args], env=env, **kwargs)


@dataclass(frozen=True)
class Served:
    url: str
    """The public API."""
    internal_url: str
    """The internal listener (``/internal/...``: what the operator and ingestion call)."""
    pid: int
    """The serving process (one uvicorn worker: the app runs in it)."""


@asynccontextmanager
async def control_plane_process(
    *,
    database: str,
    redis: str,
    kubeconfig: Path | None,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> AsyncIterator[Served]:
    """``tenantry controlplane serve`` with the internal token set (``kubeconfig`` None:
    without Kubernetes); stopped, by its pid, on exit."""
    port, internal_port = free_port(), free_port()
    env = {
        **os.environ,
        "TENANTRY_CP_DATABASE_URL": database,
        "TENANTRY_CP_REDIS_URL": redis,
        "TENANTRY_CP_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "TENANTRY_CP_ISSUER": f"http://127.0.0.1:{port}",
        "TENANTRY_CP_METRICS_PORT": str(free_port()),  # not the default: tests run side by side
        **(
            {"TENANTRY_CP_KUBECONFIG": str(kubeconfig)}
            if kubeconfig
            else {"TENANTRY_CP_KUBE_ENABLED": "false"}
        ),
        **(extra_env or {}),
    }
    proc = await asyncio.to_thread(
        services.serve_controlplane,
        env=env,
        port=port,
        internal_port=internal_port,
        log=log,
        timeout=scaled(120),
    )
    try:
        yield Served(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal_port}", proc.pid)
    finally:
        await asyncio.to_thread(stop_process, proc, grace=20, what="control plane")


@asynccontextmanager
async def control_plane(
    *, database: str, redis: str, kubeconfig: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Served]:
    """A served control plane with the internal token set."""
    async with control_plane_process(
        database=database, redis=redis, kubeconfig=kubeconfig, extra_env=extra_env
    ) as served:
        yield served
