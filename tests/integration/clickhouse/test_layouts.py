"""Layout transitions on the ClickHouse engine: one engine and data directory per host.

Each host is its own process (`tenantry_dev.loopback_server` on a loopback port, over
chDB, with a server config naming the `tenant` cluster and the host's macros), and
`tenantry.clickhouse.layout.provision` runs on every host through its own client, as
the operator does through each host's Service. Real rows go into the 1 x 1 layout;
after the transition the rows are counted, and checksummed, across the hosts' storing
tables: exactly the rows inserted, none lost, none twice.

What the engine cannot do here, honestly: chDB serves no native or interserver port,
so a Distributed table is created and resolves its cluster but cannot read from or
send to the other engines, and ReplicatedMergeTree tables stay read-only even with a
ZooKeeper reachable (measured: `system.replicas.is_readonly = 1`, ALTERs fail with
TABLE_IS_READ_ONLY). So the transitions into replicated layouts (1 x 1 -> 1 x M or
N x M, N x 1 -> N x M) are tested as decisions of `layout.next_step`
(tests/unit/clickhouse/test_layout_steps.py), and the transitions between
non-replicated layouts run here for real: 1 x 1 -> N x 1 and more shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tenantry_operator import normalize
from tenantry_operator.dataplane import schema_step

from tenantry.clickhouse import layout, schema
from tenantry.clickhouse.http_client import HttpClickHouseClient
from tenantry.clickhouse.schema import TenantSchema
from tests.support.wait import scaled, stop_process

DB = "t_acme"
ROWS = 3000  # an hour apart: five monthly partitions


def _config(shards: int, shard: int, name: str) -> str:
    replicas = "".join(
        "<shard><replica><host>127.0.0.1</host><port>9</port></replica></shard>"
        for _ in range(shards)
    )
    return (
        "<clickhouse>"
        f"<remote_servers><tenant>{replicas}</tenant></remote_servers>"
        f"<macros><cluster>tenant</cluster><shard>{shard}</shard><replica>{name}</replica></macros>"
        "</clickhouse>"
    )


@dataclass
class Host:
    name: str
    path: Path
    config: Path
    proc: subprocess.Popen[str]
    client: HttpClickHouseClient

    def stop(self, *, kill: bool = False) -> None:
        self.client.close()
        if kill:
            self.proc.kill()
        stop_process(self.proc, what=f"host {self.name}")
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _start(path: Path, config: Path, name: str) -> Host:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenantry_dev.loopback_server",
            "--path",
            str(path),
            "--port",
            "0",
            "--config-file",
            str(config),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], scaled(120))
    line = proc.stdout.readline() if readable else ""
    if not line.startswith("listening http://127.0.0.1:"):
        stop_process(proc, what=f"host {name}")
        raise AssertionError(f"host {name} did not start: {line!r}")
    port = int(line.split()[1].rsplit(":", 1)[1])
    return Host(name, path, config, proc, HttpClickHouseClient(host="127.0.0.1", port=port))


Start = Callable[[int, int], Host]


@pytest.fixture
def start_host(tmp_path: Path) -> Iterator[Start]:
    """start_host(shard, shards): a host ch-s<shard>-r0 of a cluster of `shards`
    shards, in its own process and data directory; all stopped by PID afterwards."""
    hosts: list[Host] = []

    def start(shard: int, shards: int) -> Host:
        name = f"ch-s{shard}-r0"
        config = tmp_path / name / "config.xml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(_config(shards, shard, name))
        host = _start(tmp_path / name / "data", config, name)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        with contextlib.suppress(Exception):
            host.stop()


def _layout(shards: int) -> TenantSchema:
    if shards == 1:
        return TenantSchema(database=DB, retention_days=365)
    return TenantSchema(database=DB, retention_days=365, cluster="tenant", shards=shards)


def _insert(host: Host, table: str, rows: int, *, offset: int = 0) -> None:
    host.client.command(
        f"INSERT INTO {DB}.{table} (event_id, timestamp, event, user_id, properties) "  # noqa: S608
        "SELECT generateUUIDv4(), now64(3) - toIntervalHour(number), "
        "['signup', 'view'][number % 2 + 1], concat('user-', toString(number % 97)), "
        f"concat('{{\"n\":', toString(number + {offset}), '}}') FROM numbers({rows})"
    )


def _rows(hosts: list[Host], table: str) -> tuple[int, int]:
    """Rows across the hosts' `table`, and an order-free checksum of their content."""
    count = checksum = 0
    for host in hosts:
        got = host.client.query(
            "SELECT count() AS n, sum(cityHash64(event_id, timestamp, user_id, properties)) "  # noqa: S608
            f"AS s FROM {DB}.{table}"
        )[0]
        count += int(got["n"])
        checksum = (checksum + int(got["s"])) % 2**64
    return count, checksum


def _tables(host: Host) -> dict[str, str]:
    return dict(layout.observe(host.client, _layout(2)).engines)


def test_one_host_to_two_shards_moves_every_row_into_events_local_once(
    start_host: Start,
) -> None:
    first = start_host(0, 2)
    layout.provision(first.client, _layout(1))
    _insert(first, "events", ROWS)
    before = _rows([first], "events")
    assert before[0] == ROWS
    partitions = layout.observe(first.client, _layout(1)).parts("events")
    assert len(partitions) >= 4

    second = start_host(1, 2)
    reports = [layout.provision(h.client, _layout(2)) for h in (first, second)]

    assert reports[0].converted
    assert reports[0].moved_partitions == len(partitions)
    assert reports[1].created
    assert not reports[1].moved_partitions
    assert _rows([first, second], "events_local") == before
    assert _rows([second], "events_local") == (0, 0)  # rows are not rebalanced
    for host in (first, second):
        assert _tables(host) == {"events": "Distributed", "events_local": "ReplacingMergeTree"}
        assert layout.has_schema(host.client, _layout(2))
        again = layout.provision(host.client, _layout(2))
        assert not again.changed
        assert again.statements == [f"CREATE DATABASE IF NOT EXISTS `{DB}`"]


def test_a_third_shard_gets_the_schema_and_nothing_moves(start_host: Start) -> None:
    hosts = [start_host(s, 3) for s in range(2)]
    for host in hosts:
        layout.provision(host.client, _layout(2))
    for i, host in enumerate(hosts):
        _insert(host, "events_local", 500, offset=i * 500)
    before = _rows(hosts, "events_local")

    hosts.append(start_host(2, 3))
    reports = [layout.provision(h.client, _layout(3)) for h in hosts]

    assert [r.changed for r in reports] == [False, False, True]
    assert reports[2].created
    assert _rows(hosts, "events_local") == before == (1000, before[1])
    assert _tables(hosts[2]) == {"events": "Distributed", "events_local": "ReplacingMergeTree"}


def _steps_of_conversion(host: Host) -> list[str]:
    """Every statement of a 1 x 1 -> 2 x 1 conversion, learnt on a scratch database."""
    scratch = TenantSchema(database="t_scratch", retention_days=365)
    layout.provision(host.client, scratch)
    host.client.command(
        "INSERT INTO t_scratch.events (event_id, timestamp, event, user_id, properties) "  # noqa: S608
        "SELECT generateUUIDv4(), now64(3) - toIntervalHour(number), 'e', 'u', '{}' "
        f"FROM numbers({ROWS})"
    )
    grown = TenantSchema(database="t_scratch", retention_days=365, cluster="tenant", shards=2)
    return layout.converge(host.client, grown).statements


def test_interrupted_after_any_statement_the_next_run_finishes_with_every_row_once(
    start_host: Start,
) -> None:
    """The operator killed between any two statements: the next run reads what the host
    holds and finishes; the rows are all there, once. One database per cut point."""
    host = start_host(0, 2)
    steps = _steps_of_conversion(host)
    assert len(steps) >= 8  # create, create, exchange, rename, moves..., drop
    for cut in range(1, len(steps)):
        db = f"t_cut{cut}"
        single = TenantSchema(database=db, retention_days=365)
        grown = TenantSchema(database=db, retention_days=365, cluster="tenant", shards=2)
        layout.provision(host.client, single)
        _insert_into(host, db, ROWS)
        before = _db_rows(host, db, "events")
        with pytest.raises(layout.LayoutError):
            layout.converge(host.client, grown, max_steps=cut)  # the "kill"
        assert not layout.has_schema(host.client, grown)

        report = layout.provision(host.client, grown)  # the next run

        assert _db_rows(host, db, "events_local") == before, f"cut after statement {cut}"
        assert layout.has_schema(host.client, grown)
        assert report.statements[0].startswith("CREATE DATABASE")


def test_a_host_killed_mid_conversion_finishes_after_restart(start_host: Start) -> None:
    """SIGKILL of the engine itself between two partition moves; restarted on the same
    data directory, the next run moves the rest."""
    host = start_host(0, 2)
    layout.provision(host.client, _layout(1))
    _insert(host, "events", ROWS)
    before = _rows([host], "events")
    with pytest.raises(layout.LayoutError):
        layout.converge(host.client, _layout(2), max_steps=6)  # two partitions moved
    assert 0 < _rows([host], "events_local")[0] < ROWS
    host.stop(kill=True)

    again = _start(host.path, host.config, host.name)
    try:
        report = layout.provision(again.client, _layout(2))
        assert report.moved_partitions >= 1
        assert _rows([again], "events_local") == before
        assert _tables(again) == {"events": "Distributed", "events_local": "ReplacingMergeTree"}
    finally:
        again.stop()


def _insert_into(host: Host, db: str, rows: int) -> None:
    host.client.command(
        f"INSERT INTO {db}.events (event_id, timestamp, event, user_id, properties) "  # noqa: S608
        "SELECT generateUUIDv4(), now64(3) - toIntervalHour(number), 'e', "
        f"toString(number % 13), toString(number) FROM numbers({rows})"
    )


def _db_rows(host: Host, db: str, table: str) -> tuple[int, int]:
    got = host.client.query(
        "SELECT count() AS n, sum(cityHash64(event_id, timestamp, user_id, properties)) "  # noqa: S608
        f"AS s FROM {db}.{table}"
    )[0]
    return int(got["n"]), int(got["s"])


def test_the_operator_step_reports_the_conversion_and_the_new_host(start_host: Start) -> None:
    """The operator's schema step (dataplane/schema_step.py) over the same hosts: a
    starter tenant grown to two shards; its results become Events and status."""

    def model(shards: int) -> Any:
        spec = {"plan": "starter", "clickhouse": {"shards": shards, "replicas": 1}}
        return normalize.tenant_model({"metadata": {"name": "acme"}, "spec": spec})

    first = start_host(0, 2)
    small, grown = model(1), model(2)
    assert schema_step.tenant_schema(small).database == DB
    created = asyncio.run(schema_step.ensure_schema(first.client, small))
    assert [r for r, _ in created.notices()] == ["SchemaCreated"]
    _insert(first, "events", 500)  # within the starter's retention
    before = _rows([first], "events")

    second = start_host(1, 2)
    results = [
        asyncio.run(schema_step.ensure_schema(h.client, grown, host=h.name))
        for h in (first, second)
    ]

    assert [r.summary for r in results] == ["converted", "created"]
    reason, message = results[0].notices()[0]
    assert reason == "LayoutConverted"
    assert "on ch-s0-r0" in message
    assert f"{results[0].moved_partitions} partition(s) moved" in message
    assert results[0].moved_partitions >= 1
    assert results[1].hosts == ["ch-s1-r0"]
    assert _rows([first, second], "events_local") == before
    again = asyncio.run(schema_step.ensure_schema(first.client, grown, host=first.name))
    assert again.summary == "unchanged"
    assert again.notices() == []


def _provision_v1(host: Host, wanted: TenantSchema) -> None:
    host.client.command(schema.create_database(wanted))
    # Schema version 1, as releases before the deduplicating engine created it.
    host.client.command(
        schema.events_table(wanted, engine="MergeTree", order_by=schema.ORDER_BY_V1)
    )
    distributed = schema.distributed_table(wanted)
    if distributed is not None:
        host.client.command(distributed)


def _resend(host: Host, table: str, rows: int) -> None:
    """A producer's retry stored again, as version 1 did: `rows` events a second time."""
    host.client.command(
        f"INSERT INTO {DB}.{table} SELECT * FROM {DB}.{table} "  # noqa: S608
        f"ORDER BY event_id LIMIT {rows} SETTINGS insert_deduplicate = 0"
    )


def _distinct_rows(hosts: list[Host], table: str, *, final: bool = False) -> tuple[int, int]:
    """Distinct events across the hosts' `table` (or, with `final`, the rows a reader
    with FINAL sees), and an order-free checksum of them."""
    count = checksum = 0
    columns = "event_id, timestamp, event, user_id, properties"
    source = (
        f"{DB}.{table} FINAL" if final else f"(SELECT DISTINCT {columns} FROM {DB}.{table})"  # noqa: S608
    )
    for host in hosts:
        got = host.client.query(
            "SELECT count() AS n, sum(cityHash64(event_id, timestamp, user_id, properties)) "  # noqa: S608
            f"AS s FROM {source}"
        )[0]
        count += int(got["n"])
        checksum = (checksum + int(got["s"])) % 2**64
    return count, checksum


@pytest.mark.parametrize("shards", [1, 2])
def test_a_version_1_host_is_upgraded_in_place_and_resent_events_count_once(
    start_host: Start, shards: int
) -> None:
    host = start_host(0, shards)
    wanted = _layout(shards)
    _provision_v1(host, wanted)
    _insert(host, wanted.local_table, ROWS)
    _resend(host, wanted.local_table, 100)
    assert _rows([host], wanted.local_table)[0] == ROWS + 100  # version 1 kept both
    distinct = _distinct_rows([host], wanted.local_table)
    assert distinct[0] == ROWS

    report = layout.provision(host.client, wanted)

    assert report.converted
    assert any(s.startswith("INSERT INTO") for s in report.statements)
    engine = "ReplacingMergeTree"
    expected = {"events": engine} if shards == 1 else {"events": "Distributed"}
    if shards > 1:
        expected["events_local"] = engine
    assert dict(layout.observe(host.client, wanted).engines) == expected
    assert _distinct_rows([host], wanted.local_table, final=True) == distinct
    host.client.command(f"OPTIMIZE TABLE {DB}.{wanted.local_table} FINAL")
    assert _rows([host], wanted.local_table) == distinct  # the copies merged into one
    assert not layout.provision(host.client, wanted).changed


def test_a_version_1_host_grown_to_two_shards_is_upgraded_too(start_host: Start) -> None:
    first = start_host(0, 2)
    _provision_v1(first, _layout(1))
    _insert(first, "events", ROWS)
    before = _distinct_rows([first], "events")

    second = start_host(1, 2)
    for host in (first, second):
        layout.provision(host.client, _layout(2))

    assert _distinct_rows([first, second], "events_local", final=True) == before
    for host in (first, second):
        assert _tables(host) == {"events": "Distributed", "events_local": "ReplacingMergeTree"}


def test_an_upgrade_killed_between_copy_and_drop_keeps_each_event_once(
    start_host: Start,
) -> None:
    """The copy of the version-1 rows made, the drop not: the next run copies again,
    and the engine keeps one row per event."""
    host = start_host(0, 1)
    wanted = _layout(1)
    _provision_v1(host, wanted)
    _insert(host, "events", ROWS)
    before = _distinct_rows([host], "events")
    while (step := layout.next_step(wanted, layout.observe(host.client, wanted))) is not None:
        if step.op == "copy_rows":
            host.client.command(step.sql)  # ... and the operator dies here
            break
        for statement in step.statements:
            host.client.command(statement)
    else:
        pytest.fail("no copy_rows step")
    assert _rows([host], "events_stage")[0] == ROWS  # copied once so far
    for table in ("events", "events_stage"):  # to see the copies
        host.client.command(f"SYSTEM STOP MERGES {DB}.{table}")

    layout.provision(host.client, wanted)

    assert _rows([host], "events")[0] == 2 * ROWS  # copied twice, not merged yet
    assert _distinct_rows([host], "events", final=True) == before
    host.client.command(f"SYSTEM START MERGES {DB}.events")
    host.client.command(f"OPTIMIZE TABLE {DB}.events FINAL")
    assert _rows([host], "events") == before


def test_an_upgrade_does_not_count_old_rows_again_in_materialized_views(
    start_host: Start,
) -> None:
    """A dashboard's materialized view over the version-1 table has counted its rows
    as they came; after the upgrade it holds the same totals, and new rows count once."""
    host = start_host(0, 1)
    wanted = _layout(1)
    _provision_v1(host, wanted)
    _insert(host, "events", ROWS)
    host.client.command(
        schema.materialized_view(
            wanted,
            name="mv_per_event",
            select=f"SELECT event, count() AS n FROM {DB}.events GROUP BY event",  # noqa: S608
            order_by="event",
            engine="SummingMergeTree",
        )
    )
    _insert(host, "events", 100, offset=ROWS)
    counted = f"SELECT sum(n) AS n FROM {DB}.mv_per_event"  # noqa: S608
    assert int(host.client.query(counted)[0]["n"]) == 100  # views count from creation on

    layout.provision(host.client, wanted)

    assert int(host.client.query(counted)[0]["n"]) == 100
    _insert(host, "events", 50, offset=ROWS + 100)
    assert int(host.client.query(counted)[0]["n"]) == 150  # the new table feeds the view
    assert _distinct_rows([host], "events", final=True)[0] == ROWS + 150
