"""The internal Prometheus listener of ``tenantry controlplane serve``.

Metrics are never served by the public app: the public port is what an Ingress exposes,
and route names, statuses and latencies are the operator's business only. ``serve``
starts this listener on its own address instead (``--metrics-host``/``--metrics-port``,
default 127.0.0.1:9464; port 0: none).

``serve --workers N`` runs N uvicorn processes that each count their own requests, and
only one process can bind a port. prometheus_client's multiprocess mode answers both:
``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh private folder before any worker
exists, every worker's counters and histograms write their samples to files there, and
this listener, a thread of the supervising process, adds them up on each scrape. With
one worker uvicorn runs the app in this same process, which works the same way. Samples
of a worker that died stay in its files, so counters never go backwards; the folder is
removed when ``serve`` exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _exit(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


@contextmanager
def serving(host: str, port: int) -> Iterator[None]:
    """Serve the metrics of this process and its workers on ``host:port`` (0: none)."""
    if port == 0:
        yield
        return
    from prometheus_client import CollectorRegistry, start_http_server, values
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = tempfile.mkdtemp(prefix="tenantry-metrics-")
    os.environ[MULTIPROC_ENV] = folder  # inherited by the workers, which import afresh
    # prometheus_client chooses in-memory or file-backed values when it is first
    # imported, and this process imported it already (``tenantry`` loads every command's
    # arguments); choose again for the metrics created here from now on: with one worker
    # uvicorn runs the app in this process.
    in_memory = values.ValueClass
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    # uvicorn (one worker) re-raises SIGTERM once it has shut down; by default that kills
    # the process before the folder is removed, so make it an exit that unwinds.
    default_term = signal.signal(signal.SIGTERM, _exit)
    try:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        server, thread = start_http_server(port, addr=host, registry=registry)
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
    finally:
        signal.signal(signal.SIGTERM, default_term)
        values.ValueClass = in_memory
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
