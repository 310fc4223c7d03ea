"""The control plane as its own process (`tenantry controlplane serve`), for the tests
that run the product the way it is deployed: separate processes talking over HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.integration.controlplane.servers import free_port

INTERNAL_TOKEN = "internal-test-token-0123456789"


def spawn_cli(args: list[str], *, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``tenantry <args>`` as a child process."""
    return subprocess.Popen([sys.executable, "-m", "tenantry.cli", *args], env=env, **kwargs)


@asynccontextmanager
async def control_plane(
    *, database: str, redis: str, kubeconfig: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """A served control plane with the internal token set; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "TENANTRY_CP_DATABASE_URL": database,
        "TENANTRY_CP_REDIS_URL": redis,
        "TENANTRY_CP_KUBECONFIG": str(kubeconfig),
        "TENANTRY_CP_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "TENANTRY_CP_ISSUER": f"http://127.0.0.1:{port}",
        "TENANTRY_CP_METRICS_PORT": str(free_port()),  # not the default: tests run side by side
        **(extra_env or {}),
    }
    proc = spawn_cli(
        ["controlplane", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, "the control plane exited"
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
