"""Run the operator: kopf with our settings, cluster-wide, with a liveness endpoint."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from tenantry_operator import handlers  # noqa: F401 - registers the handlers

PREFIX = "tenantry.io"


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


def run(*, liveness: str = "http://0.0.0.0:8080/healthz", verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # One line per API request is noise at INFO (and costs CPU at hundreds of tenants).
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    kopf.run(clusterwide=True, standalone=True, liveness_endpoint=liveness)
