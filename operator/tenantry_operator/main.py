"""Run the operator: kopf with our settings, cluster-wide, with a liveness endpoint."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import kopf

from tenantry_operator import handlers  # noqa: F401 - registers the handlers
from tenantry_operator.settings import Settings

PREFIX = "tenantry.io"
# kopf's own API connections (Tenants, Dashboards, their patches and Events). kopf's
# default is no limit: a burst of hundreds of new Tenants then opened hundreds of TLS
# connections at once, each a handshake for the API server and buffers here.
KOPF_CONNECTIONS = 16


@kopf.on.login()
async def login(
    logger: kopf.Logger, settings: kopf.OperatorSettings, **_: Any
) -> kopf.AiohttpSession | None:
    """The usual credentials (in-cluster account, else kubeconfig) on a session whose
    connection pool is bounded."""
    info = kopf.login_with_service_account(
        logger=logger, settings=settings
    ) or kopf.login_with_kubeconfig(logger=logger, settings=settings)
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=KOPF_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        auth=info.as_aiohttp_basic_auth(),
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Keep kopf's bookkeeping under our own annotation prefix.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30


def run(*, liveness: str | None = None, verbose: bool = False) -> None:
    """Run kopf; `liveness` None: the endpoint of the settings (TENANTRY_LIVENESS)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # One line per API request is noise at INFO (and costs CPU at hundreds of tenants).
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if liveness is None:
        liveness = Settings.from_env().liveness
    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=liveness)
