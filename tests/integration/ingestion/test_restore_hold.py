"""A restore's hold on ingestion loses nothing (operator/tenantry_operator/restore_hold.py).

The pods are rolled as the operator renders them (``builders.ingestion.args``): writers,
then held pods (``--no-writer``) while the restore runs, then writers again. Events
posted to held pods are acknowledged, kept in the Redis Stream and written by the
writers that come after, exactly once; none reaches ClickHouse while held.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from pathlib import Path

import aiohttp
from tenantry_operator import builders

from tenantry.clickhouse.chdb_client import ChdbClient
from tenantry_dev.loopback_server import LoopbackServer
from tenantry_dev.services import free_port
from tests.integration.ingestion.conftest import (
    API_KEY,
    RedisProcess,
    ndjson_events,
    rows,
    writer_process,
)
from tests.integration.ingestion.test_process import until_ready, until_rows
from tests.support.wait import scaled, stop_process
from tests.unit.operator import fixtures

HEADERS = {"X-API-Key": API_KEY, "Content-Type": "application/x-ndjson"}


def _args(*, held: bool) -> tuple[str, ...]:
    """The pod's arguments as the operator renders them, minus the ``ingest`` command
    (``python -m ingestion`` is ``tenantry ingest``)."""
    model = fixtures.model("tenant-starter")
    if held:
        model = dataclasses.replace(model, restore_hold="r1")
    command, *rest = builders.ingestion.args(model)
    assert command == "ingest"
    return tuple(rest)


async def _post(session: aiohttp.ClientSession, url: str, batches: int, prefix: str) -> None:
    for _ in range(batches):
        body = ndjson_events(100, prefix=prefix)
        async with session.post(f"{url}/v1/events", data=body, headers=HEADERS) as resp:
            assert resp.status == 202, await resp.text()


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=scaled(60)) == 0, log.read_text()


async def test_events_accepted_during_a_restore_are_written_after_it_once(
    redis_process: RedisProcess,
    loopback: LoopbackServer,
    chdb_client: ChdbClient,
    database: str,
    tmp_path: Path,
) -> None:
    assert _args(held=False) == ()
    assert _args(held=True) == ("--no-writer",)
    started: list[subprocess.Popen[bytes]] = []

    def pod(name: str, *, held: bool) -> tuple[subprocess.Popen[bytes], Path, str]:
        port, log = free_port(), tmp_path / f"{name}.log"
        proc = writer_process(
            loopback=loopback, redis_process=redis_process, database=database,
            consumer=name, log=log, args=_args(held=held), listen_port=port,
        )  # fmt: skip
        started.append(proc)
        return proc, log, f"http://127.0.0.1:{port}"

    try:
        async with aiohttp.ClientSession() as session:
            before, before_log, before_url = pod("ingestion-a", held=False)
            await until_ready(session, before_url, before, before_log)
            await _post(session, before_url, 3, "before")
            await until_rows(chdb_client, database, 300, before, before_log)

            # The hold: a held pod comes up, the writing one stops (it flushes first).
            held, held_log, held_url = pod("ingestion-b", held=True)
            await until_ready(session, held_url, held, held_log)
            _stop(before, before_log)
            # What the restore sees: no writer anywhere, so the table stays as it is
            # while events keep being acknowledged.
            await _post(session, held_url, 5, "during")
            assert rows(chdb_client, database) == (300, 300)
            assert "writer: False" in held_log.read_text()  # the process says it runs none

            # Released: writers again; the held pod goes.
            after, after_log, after_url = pod("ingestion-c", held=False)
            await until_ready(session, after_url, after, after_log)
            _stop(held, held_log)
            await _post(session, after_url, 1, "after")
            await until_rows(chdb_client, database, 900, after, after_log)
            _stop(after, after_log)
    finally:
        for proc in started:
            stop_process(proc, what="ingestion")
    assert rows(chdb_client, database) == (900, 900)
    (row,) = chdb_client.query(
        f"SELECT countIf(JSONExtractString(properties, 'tag') = 'during') AS n "  # noqa: S608
        f"FROM `{database}`.events"
    )
    assert int(row["n"]) == 500
