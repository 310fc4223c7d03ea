"""``tenantry redis-exporter`` (the tenant Redis's metrics sidecar) scraping a real
redis-server that requires a password, as the tenants' Redis does (issue 16)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from ingestion import redis_exporter as rx
from tenantry_dev.services import RedisServer, free_port
from tests.support.wait import eventually, stop_process

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class Exporter:
    def __init__(self, server: RedisServer, password: str, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / "exporter.log"
        env = {
            **os.environ,
            "TENANTRY_REDIS_HOST": "127.0.0.1",
            "TENANTRY_REDIS_PORT": str(server.port),
            "TENANTRY_REDIS_PASSWORD": password,
            "TENANTRY_METRICS_LISTEN": f"127.0.0.1:{self.port}",
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tenantry_cli", "redis-exporter"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def scrape(self) -> Samples:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return _samples(resp.read().decode())

    def first_scrape(self) -> Samples:
        seen: Samples = eventually(
            self.scrape, what="the exporter's /metrics", timeout=30, ignore=(OSError,)
        )
        return seen


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RedisServer, str]]:
    password = secrets.token_hex(16)
    started = RedisServer.start(tmp_path / "redis", password=password)
    try:
        yield started, password
    finally:
        started.stop()


@pytest.fixture
def exporters(tmp_path: Path) -> Iterator[list[Exporter]]:
    running: list[Exporter] = []
    yield running
    for exporter in running:
        stop_process(exporter.proc, what="redis exporter")


def test_the_exporter_reports_a_real_redis(
    server: tuple[RedisServer, str], exporters: list[Exporter], tmp_path: Path
) -> None:
    redis_server, password = server
    client = redis.Redis.from_url(redis_server.url)
    client.set("a", "1")
    client.set("b", "2")
    client.set("c", "3", ex=3600)
    exporter = Exporter(redis_server, password, tmp_path)
    exporters.append(exporter)
    seen = exporter.first_scrape()
    assert seen[(rx.UP, ())] == 1
    assert seen[(rx.DB_KEYS, (("db", "db0"),))] == 3
    assert seen[(rx.DB_KEYS_EXPIRING, (("db", "db0"),))] == 1
    assert seen[("redis_aof_enabled", ())] == 1  # the launcher's appendonly yes
    assert seen[(rx.AOF_LAST_WRITE_OK, ())] == 1
    assert seen[("redis_connected_clients", ())] >= 2  # the test's client and the exporter
    before = seen[("redis_commands_processed_total", ())]
    client.get("a")
    client.get("missing")
    after = exporter.scrape()
    assert after[("redis_commands_processed_total", ())] >= before + 2
    assert after[("redis_keyspace_misses_total", ())] >= 1

    # Redis gone: the exporter still answers, and says so
    redis_server.stop()
    down = exporter.scrape()
    assert down[(rx.UP, ())] == 0
    assert not [k for k in down if k[0] == rx.DB_KEYS]
    assert stop_process(exporter.proc, what="redis exporter") == 0  # SIGTERM: a clean exit


def test_a_wrong_password_is_reported_down_and_not_logged(
    server: tuple[RedisServer, str], exporters: list[Exporter], tmp_path: Path
) -> None:
    redis_server, _password = server
    wrong = secrets.token_hex(16)
    exporter = Exporter(redis_server, wrong, tmp_path)
    exporters.append(exporter)
    assert exporter.first_scrape()[(rx.UP, ())] == 0
    stop_process(exporter.proc, what="redis exporter")
    log = exporter.log.read_text()
    assert "INFO failed" in log
    assert wrong not in log


def test_info_fields_map_to_series() -> None:
    """The pure mapping: an ``err`` status is 0, unknown fields and non-numbers are left
    out, databases become ``db`` labels."""
    families = {
        f.name: f
        for f in rx.families(
            {
                "connected_clients": 4,
                "aof_last_write_status": "err",
                "rdb_last_bgsave_status": "ok",
                "maxmemory": "not a number",
                "db3": {"keys": 7, "expires": 2},
                "dbx": {"keys": 1},
            }
        )
    }
    assert families["redis_connected_clients"].samples[0].value == 4
    assert families[rx.AOF_LAST_WRITE_OK].samples[0].value == 0
    assert families["redis_rdb_last_bgsave_status"].samples[0].value == 1
    assert "redis_memory_max_bytes" not in families
    assert [(s.labels, s.value) for s in families[rx.DB_KEYS].samples] == [({"db": "db3"}, 7)]
