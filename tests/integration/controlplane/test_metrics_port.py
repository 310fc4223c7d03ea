"""Prometheus metrics of ``tenantry controlplane serve`` are on the internal port only,
and with several uvicorn workers they add up every worker's requests."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantry_dev.services import serve_controlplane
from tests.integration.controlplane.servers import free_port
from tests.support.wait import eventually, scaled, stop_process

HEALTHZ = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True)
class Served:
    public: str
    metrics: str
    proc: subprocess.Popen[bytes]
    tmp: Path
    """The server's TMPDIR, where its metrics folder lives."""

    def folders(self) -> list[Path]:
        return list(self.tmp.glob("tenantry-metrics-*"))


@contextmanager
def _serve(
    database: str, redis_db: str, folder: Path, *extra: str, workers: int = 1
) -> Iterator[Served]:
    public, metrics = free_port(), free_port()
    tmp = folder / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "TENANTRY_CP_DATABASE_URL": database,
        "TENANTRY_CP_REDIS_URL": redis_db,
        "TENANTRY_CP_KUBE_ENABLED": "false",
        "TMPDIR": str(tmp),
    }
    proc = serve_controlplane(
        env=env,
        port=public,
        log=folder / "serve.log",
        workers=workers,
        extra_args=("--metrics-port", str(metrics), *extra),
        timeout=scaled(120),
    )
    try:
        yield Served(f"http://127.0.0.1:{public}", f"http://127.0.0.1:{metrics}", proc, tmp)
    finally:
        stop_process(proc, grace=20, what="control plane")


def _get_healthz(served: Served, times: int) -> None:
    # A new connection per request, as many clients would make.
    with httpx.Client(headers={"Connection": "close"}) as http:
        for _ in range(times):
            assert http.get(f"{served.public}/healthz").status_code == 200


def _scrape(served: Served) -> Samples:
    r = httpx.get(f"{served.metrics}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_are_on_the_internal_port_only(
    database: str, redis_db: str, tmp_path: Path
) -> None:
    with _serve(database, redis_db, tmp_path) as served:
        _get_healthz(served, 20)
        r = httpx.get(f"{served.public}/metrics")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
        # Each request is counted just after its response went out: the last one's
        # count may land a moment after the client has its answer.
        samples = eventually(
            lambda: _scrape(served),
            accept=lambda s: s.get(("tenantry_http_requests_total", unmatched)) == 1,
            what="the 404 counted",
        )
        assert samples[("tenantry_http_requests_total", HEALTHZ)] == 20
        duration = (("method", "GET"), ("route", "/healthz"))
        assert samples[("tenantry_http_request_duration_seconds_count", duration)] == 20
        assert samples[("tenantry_http_requests_total", unmatched)] == 1
        # The outage counters (test_outages.py) have both series from the start, at 0.
        for name in ("tenantry_dependency_unavailable_total", "tenantry_stale_reads_total"):
            for dependency in ("postgres", "redis"):
                assert samples[(name, (("dependency", dependency),))] == 0
        # The samples live in one private folder...
        (folder,) = served.folders()
        assert list(folder.glob("counter_*.db"))
    assert served.proc.returncode is not None
    # ...which goes away with the server.
    assert served.folders() == []


def test_every_workers_requests_are_counted(database: str, redis_db: str, tmp_path: Path) -> None:
    """Two uvicorn workers: the listener adds both up, and a worker that dies (uvicorn
    starts another) leaves its counts behind, so the total never goes backwards."""
    with _serve(database, redis_db, tmp_path, workers=2) as served:
        _get_healthz(served, 10)
        # A request is counted just after its response went out: wait for all ten, or
        # the SIGKILL below can land in between and lose one (seen on a loaded machine).
        eventually(
            lambda: _scrape(served).get(("tenantry_http_requests_total", HEALTHZ)),
            accept=lambda counted: counted == 10,
            what="the first 10 requests counted",
        )
        (folder,) = served.folders()

        def pids() -> set[int]:
            return {int(f.stem.split("_")[1]) for f in folder.glob("counter_*.db")}

        first = min(pids())
        os.kill(first, signal.SIGKILL)  # another worker serves what comes next

        def gone() -> bool:
            stat = Path(f"/proc/{first}/stat")
            try:
                return " Z " in stat.read_text()
            except FileNotFoundError:
                return True

        eventually(gone, what=f"worker {first} dead", interval=0.05)
        _get_healthz(served, 5)
        assert first in pids()
        assert len(pids()) >= 2
        assert _scrape(served)[("tenantry_http_requests_total", HEALTHZ)] == 15


def test_metrics_listener_can_be_turned_off(database: str, redis_db: str, tmp_path: Path) -> None:
    with _serve(database, redis_db, tmp_path, "--metrics-port", "0") as served:
        assert httpx.get(f"{served.public}/metrics").status_code == 404
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{served.metrics}/metrics")
        assert served.folders() == []
