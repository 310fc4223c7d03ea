"""The restore Job's own command, run as the Job runs it, against the ClickHouse engine
and a real S3 (SeaweedFS), from backups the backup CronJob's own command took.

A 2-shard tenant (``rs-src``, one loopback chDB server per host, each with the real
per-host schema: ``events_local`` plus the Distributed ``events``) gets N rows and is
backed up by ``tenantry backup``. ``tenantry restore``, with the container command and
environment ``builders.restore`` renders and the Secrets resolved as the kubelet would,
then restores that backup into a fresh 1-shard tenant (``events`` a MergeTree) and a
fresh 3-shard tenant. Afterwards the targets hold exactly the N rows, with the same
checksum over every column, and on 3 shards every row is on the shard the Distributed
table's sharding key names. The refusals and failures leave the target as it was: a
non-empty target without overwrite, a backup that does not exist, an incomplete one (no
manifest), a corrupt one (a data object overwritten in S3), wrong S3 credentials; and
no message prints a secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tenantry_operator import backups, restore_progress, secrets
from tenantry_operator.builders import backup as backup_builder
from tenantry_operator.builders import restore as restore_builder
from tenantry_operator.dataplane.schema_step import tenant_schema
from tenantry_operator.model import TenantModel
from tenantry_operator.normalize import tenant_model
from tenantry_operator.s3 import S3Config

from tenantry import contract
from tenantry.api.restore import ShardPhase
from tenantry.clickhouse import layout, open_client, schema
from tenantry.clickhouse.client import ClickHouseClient, quote_identifier
from tests.support.loopback_hosts import Host, decoded, run_container, start_host
from tests.support.seaweed import S3Server
from tests.support.wait import stop_process

BUCKET = "tenant-restores"
PREFIX = "nightly/"
ROWS = (1500, 700)  # per source shard
SOURCE = "rs-src"
COLUMNS = ", ".join(quote_identifier(n) for n, _ in schema.EVENT_COLUMNS)


def _model(name: str, shards: int) -> TenantModel:
    body = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name, "uid": f"0000-{name}", "generation": 1},
        "spec": {
            "plan": "growth",
            "clickhouse": {"shards": shards, "replicas": 1},
            "backup": {"bucket": BUCKET, "prefix": PREFIX, "retention": 5},
        },
    }
    return tenant_model(body)


def _config(path: Path, shards: int, shard: int) -> Path:
    """The host's share of the server config the operator renders that schema needs: the
    `tenant` cluster with `shards` shards (chDB serves no interserver port, so the
    addresses are never dialled) and the host's macros."""
    replicas = "".join(
        "<shard><replica><host>127.0.0.1</host><port>9</port></replica></shard>"
        for _ in range(shards)
    )
    path.write_text(
        "<clickhouse>"
        f"<remote_servers><tenant>{replicas}</tenant></remote_servers>"
        f"<macros><cluster>tenant</cluster><shard>{shard}</shard><replica>r0</replica></macros>"
        "</clickhouse>"
    )
    return path


@dataclass
class Tenant:
    model: TenantModel
    password: str
    hosts: dict[str, Host] = field(default_factory=dict)  # by host name, shard order

    def client(self, name: str) -> ClickHouseClient:
        return open_client(f"http://admin:{self.password}@127.0.0.1:{self.hosts[name].port}/")

    def resolve(self) -> dict[str, str]:
        return {name: f"127.0.0.1:{h.port}" for name, h in self.hosts.items()}

    @property
    def table(self) -> str:
        return tenant_schema(self.model).local_table

    def per_host(self, sql: str) -> list[Any]:
        """`sql` (with `{t}` for the storing table) on every host, in shard order."""
        out = []
        for name in self.hosts:
            client = self.client(name)
            target = f"{quote_identifier(self.model.database)}.{quote_identifier(self.table)}"
            out.append(client.query(sql.format(t=target))[0]["v"])
            client.close()
        return out

    def rows(self) -> list[int]:
        return [int(v) for v in self.per_host("SELECT count() AS v FROM {t}")]

    def checksum(self) -> int:
        """Sum over every row of a hash of all its columns, in a canonical order."""
        return sum(
            int(v)
            for v in self.per_host(
                f"SELECT sum(toUInt128(cityHash64({COLUMNS}))) AS v FROM {{t}}"  # noqa: S608
            )
        )

    def databases(self) -> set[str]:
        found: set[str] = set()
        for name in self.hosts:
            client = self.client(name)
            found |= {str(r["name"]) for r in client.query("SHOW DATABASES")}
            client.close()
        return found


@dataclass
class World:
    s3: S3Server
    source: Tenant
    targets: dict[int, Tenant]  # by shard count
    backup: str  # the good backup of the source

    def secrets(self, tenant: Tenant, *, s3_secret: str | None = None) -> dict[str, Any]:
        config = self.s3.config
        if s3_secret is not None:
            config = S3Config(config.endpoint, config.access_key_id, s3_secret)
        return {
            contract.CLICKHOUSE_SECRET: {
                contract.CLICKHOUSE_PASSWORD_KEYS["admin"]: tenant.password
            },
            contract.BACKUP_S3_SECRET: secrets.backup_secret_data(config),
        }

    def backup_now(self) -> str:
        (cron,) = backup_builder.cron_jobs(self.source.model)
        (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        before = set(self.inventory().complete)
        result = run_container(container, self.secrets(self.source), resolve=self.source.resolve())
        assert result.returncode == 0, result.stderr
        (name,) = set(self.inventory().complete) - before
        return name

    def restore(
        self,
        target: Tenant,
        *,
        backup: str = "latest",
        overwrite: bool = False,
        source: str = SOURCE,
        s3_secret: str | None = None,
    ) -> Any:
        job = restore_builder.job(
            target.model,
            name="restore-test",
            source_tenant=source,
            backup_name=backup,
            overwrite=overwrite,
        )
        (container,) = job["spec"]["template"]["spec"]["containers"]
        result = run_container(
            container, self.secrets(target, s3_secret=s3_secret), resolve=target.resolve()
        )
        for value in (target.password, self.s3.access_key_id, self.s3.secret_access_key):
            assert value not in result.stdout + result.stderr
        return result

    def inventory(self) -> backups.Inventory:
        root = f"{PREFIX}{self.source.model.name}/"
        pages = (
            self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=root)
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return backups.inventory(keys, root=root)


def _tenant(name: str, shards: int, tmp: pytest.TempPathFactory, procs: list[Host]) -> Tenant:
    model = _model(name, shards)
    password = decoded(secrets.generated_secret(model, contract.CLICKHOUSE_SECRET))[
        contract.CLICKHOUSE_PASSWORD_KEYS["admin"]
    ]
    tenant = Tenant(model, password)
    for shard, (host_name,) in enumerate(backup_builder.hosts(model)):
        directory = tmp.mktemp(host_name)
        config = _config(directory / "config.xml", shards, shard) if shards > 1 else None
        host = start_host(directory, password, config=config)
        procs.append(host)
        host.name = host_name
        tenant.hosts[host_name] = host
        client = tenant.client(host_name)
        layout.provision(client, tenant_schema(model))
        client.close()
    return tenant


@pytest.fixture(scope="module")
def world(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    procs: list[Host] = []
    try:
        source = _tenant(SOURCE, 2, tmp_path_factory, procs)
        for name, rows, start in zip(source.hosts, ROWS, (0, ROWS[0]), strict=True):
            client = source.client(name)
            client.command(
                f"INSERT INTO {quote_identifier(source.model.database)}.events_local "  # noqa: S608
                "(event_id, timestamp, event, user_id, properties) SELECT generateUUIDv4(), "
                "now64(3) - number * 60, ['click', 'view'][number % 2 + 1], "
                "toString(number % 997), toString(number) "
                "FROM numbers({start:UInt64}, {rows:UInt64})",
                {"start": start, "rows": rows},
            )
            client.close()
        targets = {n: _tenant(f"rs-into{n}", n, tmp_path_factory, procs) for n in (1, 3)}
        s3_server.client().create_bucket(Bucket=BUCKET)
        world = World(s3_server, source, targets, backup="")
        world.backup = world.backup_now()
        yield world
    finally:
        for host in procs:
            if host.proc is not None:
                stop_process(host.proc, grace=15, what="loopback ClickHouse")


@pytest.mark.parametrize("shards", [1, 3])
def test_restore_into_another_shard_count_brings_every_row_once(world: World, shards: int) -> None:
    target = world.targets[shards]
    assert target.rows() == [0] * shards
    result = world.restore(target, backup=world.backup)
    assert result.returncode == 0, result.stderr
    assert f"restore of {world.backup} complete: {sum(ROWS)} rows" in result.stdout
    for shard, rows in enumerate(target.rows()):
        assert f"shard {shard}: {rows} rows in place on " in result.stdout
    assert "(the engine's RESTORE)" not in result.stdout  # another shard count: row by row
    # what the operator puts in the Restore's status, read from this very output
    progress = restore_progress.parse(result.stdout.splitlines())
    assert progress.plan is not None
    assert (progress.plan.backup, progress.plan.rows) == (world.backup, sum(ROWS))
    assert progress.plan.shards == shards
    by_shard = [progress.shards[k] for k in sorted(progress.shards)]
    assert [(s.shard, s.phase, s.rows) for s in by_shard] == [
        (shard, ShardPhase.IN_PLACE, rows) for shard, rows in enumerate(target.rows())
    ]
    assert [s.host for s in by_shard] == list(target.hosts)
    assert progress.restored() == sum(ROWS)
    assert progress.summary() == f"{shards}/{shards} shards in place"
    # the shards are staged at once: each starts before any has finished
    phases = [
        restore_progress.parse([line]).shards
        for line in result.stdout.splitlines()
        if line.startswith(restore_progress.PREFIX) and '"shard"' in line
    ]
    order = [(shard, s.phase) for one in phases for shard, s in one.items()]
    first_staged = next(i for i, (_, phase) in enumerate(order) if phase == ShardPhase.STAGED)
    started = {shard for shard, phase in order[:first_staged] if phase == ShardPhase.STAGING}
    assert started == set(range(shards))
    assert sum(target.rows()) == sum(ROWS)
    assert target.checksum() == world.source.checksum()
    if shards > 1:
        # each row is on the shard the Distributed table's sharding key sends it to
        placed = target.per_host(
            f"SELECT countIf({schema.SHARDING_KEY} % {shards} != "  # noqa: S608
            "toUInt64(getMacro('shard'))) AS v FROM {t}"
        )
        assert placed == [0] * shards
        assert all(n > 0 for n in target.rows())
    assert f"{target.model.database}_restore" not in target.databases()


def test_a_non_empty_target_is_refused_unless_overwrite(world: World) -> None:
    target = world.targets[1]
    if sum(target.rows()) == 0:
        assert world.restore(target, backup=world.backup).returncode == 0
    before = (target.rows(), target.checksum())
    refused = world.restore(target, backup=world.backup)
    assert refused.returncode == 1
    assert (
        f"restore failed: {target.model.database} is not empty (shard 0 on "
        f"{next(iter(target.hosts))}: {sum(ROWS)} rows); restore with overwrite" in refused.stderr
    )
    assert (target.rows(), target.checksum()) == before
    # a row the backup does not hold goes with overwrite: the target is the backup again
    client = target.client(next(iter(target.hosts)))
    client.command(
        f"INSERT INTO {quote_identifier(target.model.database)}.events "  # noqa: S608
        "(event_id, timestamp, event, user_id, properties) "
        "VALUES (generateUUIDv4(), now64(3) - 86400 * 40, 'extra', 'u', '{}')"
    )
    client.close()
    assert sum(target.rows()) == sum(ROWS) + 1
    replaced = world.restore(target, backup=world.backup, overwrite=True)
    assert replaced.returncode == 0, replaced.stderr
    assert "overwrite: replacing the rows" in replaced.stdout
    assert (target.rows(), target.checksum()) == before


def _untouched(world: World, result: Any, message: str) -> None:
    assert result.returncode == 1
    assert f"restore failed: {message}" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_and_incomplete_backups_are_refused(world: World) -> None:
    target = world.targets[3]
    before = target.rows()
    missing = world.restore(target, backup="20200101T000000.000Z")
    _untouched(world, missing, f"no backup 20200101T000000.000Z of tenant {SOURCE} in bucket")
    nobody = world.restore(target, source="rs-nobody")
    _untouched(world, nobody, f"no complete backup of tenant rs-nobody in bucket {BUCKET}")
    # a backup whose manifest was never written (a run that failed half-way)
    raw = world.s3.client()
    key = f"{PREFIX}{SOURCE}/20210101T000000.000Z/shard-0/.backup"
    raw.put_object(Bucket=BUCKET, Key=key, Body=b"<x/>")
    try:
        incomplete = world.restore(target, backup="20210101T000000.000Z", overwrite=True)
    finally:
        raw.delete_object(Bucket=BUCKET, Key=key)
    _untouched(
        world,
        incomplete,
        "backup 20210101T000000.000Z of tenant rs-src in bucket "
        f"{BUCKET} is incomplete (no manifest)",
    )
    assert target.rows() == before


def test_wrong_s3_credentials_fail_before_anything(world: World) -> None:
    target = world.targets[3]
    before = (target.rows(), target.checksum())
    result = world.restore(target, overwrite=True, s3_secret="not-the-secret")
    _untouched(world, result, f"checking bucket: S3 refused it in bucket {BUCKET} (403")
    assert "not-the-secret" not in result.stdout + result.stderr
    assert (target.rows(), target.checksum()) == before


@pytest.mark.parametrize("into", ["three shards", "the source itself"])
def test_a_corrupt_backup_fails_and_leaves_the_target_as_it_was(world: World, into: str) -> None:
    """Row by row (into 3 shards) the engine's decoding fails; the engine's own RESTORE
    (into the source's layout) copies files, so the restored table is checked."""
    target = world.targets[3] if into == "three shards" else world.source
    if sum(target.rows()) == 0:
        assert world.restore(target, backup=world.backup).returncode == 0
    before = (target.rows(), target.checksum())
    name = world.backup_now()
    raw = world.s3.client()
    root = f"{PREFIX}{SOURCE}/{name}/shard-1/"
    listed = raw.list_objects_v2(Bucket=BUCKET, Prefix=root)["Contents"]
    data = max((o for o in listed if o["Key"].endswith(".bin")), key=lambda o: o["Size"])
    raw.put_object(Bucket=BUCKET, Key=data["Key"], Body=b"\0" * data["Size"])
    source = SOURCE if target is not world.source else ""
    result = world.restore(target, backup=name, overwrite=True, source=source)
    assert result.returncode == 1
    assert result.stderr.startswith("restore failed: "), result.stderr
    if into == "the source itself":  # CHECK TABLE after the engine's RESTORE
        assert "shard 1 on " in result.stderr
        assert f"backup {name} shard 1 is corrupt (" in result.stderr
    assert "Code: " in result.stderr  # the engine's own words
    assert "Received ClickHouse exception" not in result.stderr
    assert (target.rows(), target.checksum()) == before
    assert f"{target.model.database}_restore" not in target.databases()


def test_restore_into_the_same_tenant_after_a_loss(world: World) -> None:
    """The source tenant loses rows; its own backup (source.tenant unset) with overwrite
    brings exactly the backed-up rows back, each on the shard it was backed up from (the
    engine's RESTORE of each shard: same layout)."""
    source = world.source
    before = (sum(source.rows()), source.checksum())
    assert before[0] == sum(ROWS)
    client = source.client(next(iter(source.hosts)))
    client.command(f"TRUNCATE TABLE {quote_identifier(source.model.database)}.{source.table} SYNC")
    client.close()
    assert sum(source.rows()) < sum(ROWS)
    result = world.restore(source, backup=world.backup, source="", overwrite=True)
    assert result.returncode == 0, result.stderr
    assert (sum(source.rows()), source.checksum()) == before
    assert source.rows() == list(ROWS)
    assert result.stdout.count("(the engine's RESTORE)") == 2


def test_restore_into_a_replicated_layout_goes_through_one_answering_replica_per_shard(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A 2 x 2 target with one replica of each shard down (shard 0's first, shard 1's
    second): each shard's rows go, once, to the replica that answers.

    Stand-in, named: the live replicas store the rows in a MergeTree ``events_local``,
    where the real layout has a ReplicatedMergeTree. chDB keeps replicated tables
    read-only (no Keeper; tests/integration/clickhouse/test_layouts.py), so what Keeper
    then does with the attached parts (copy them to the other replica of the shard) is
    not tested here. What is: the job's choice of replica, the storing table of a
    replicated layout, the routing by the sharding key, and the verification."""
    body = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "rs-repl", "uid": "0000-rs-repl", "generation": 1},
        "spec": {
            "plan": "growth",
            "clickhouse": {"shards": 2, "replicas": 2},
            "backup": {"bucket": BUCKET, "prefix": PREFIX, "retention": 5},
        },
    }
    model = tenant_model(body)
    password = decoded(secrets.generated_secret(model, contract.CLICKHOUSE_SECRET))[
        contract.CLICKHOUSE_PASSWORD_KEYS["admin"]
    ]
    target = Tenant(model, password)
    assert target.table == "events_local"  # replicated: ReplicatedMergeTree there
    hosts = backup_builder.hosts(model)
    live = {hosts[0][1]: 0, hosts[1][0]: 1}  # host name -> shard
    procs: list[Host] = []
    try:
        for host_name, shard in live.items():
            directory = tmp_path_factory.mktemp(host_name)
            host = start_host(directory, password, config=_config(directory / "c.xml", 2, shard))
            procs.append(host)
            host.name = host_name
            target.hosts[host_name] = host
            client = target.client(host_name)
            # the stand-in: the N x 1 form of the schema (MergeTree events_local)
            layout.provision(client, dataclasses.replace(tenant_schema(model), replicas=1))
            client.close()
        result = world.restore(target, backup=world.backup)
        assert result.returncode == 0, result.stderr
        assert f"shard 0: {hosts[0][0]} does not answer, trying the next replica" in result.stdout
        assert f"shard 1: {hosts[1][1]}" not in result.stdout  # r0 answered: r1 never asked
        assert sum(target.rows()) == sum(ROWS)
        assert all(n > 0 for n in target.rows())
        assert target.checksum() == world.source.checksum()
        # as many shards as the source, which has no replicas: the engine's RESTORE of
        # each source shard into the same target shard, the source's placement kept
        assert target.rows() == list(ROWS)
        assert result.stdout.count("(the engine's RESTORE)") == 2
        assert f"{model.database}_restore" not in target.databases()
    finally:
        for host in procs:
            if host.proc is not None:
                stop_process(host.proc, grace=15, what="loopback ClickHouse")


def test_a_backup_of_schema_version_1_restores_into_this_version(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A tenant backed up before the upgrade (plain MergeTree, an event stored twice as
    version 1 did) restores into a tenant of this version: every stored row arrives,
    and readers (FINAL) see each event once."""
    procs: list[Host] = []
    try:
        old = _tenant("rs-old", 1, tmp_path_factory, procs)
        (host,) = old.hosts
        client = old.client(host)
        table = f"{quote_identifier(old.model.database)}.events"
        client.command(f"DROP TABLE {table} SYNC")
        client.command(
            schema.events_table(
                tenant_schema(old.model), engine="MergeTree", order_by=schema.ORDER_BY_V1
            )
        )
        client.command(
            f"INSERT INTO {table} (event_id, timestamp, event, user_id, properties) "  # noqa: S608
            "SELECT generateUUIDv4(), now64(3) - number * 60, 'view', toString(number % 31), "
            "toString(number) FROM numbers(800)"
        )
        client.command(
            f"INSERT INTO {table} SELECT * FROM {table} ORDER BY event_id LIMIT 50 "  # noqa: S608
            "SETTINGS insert_deduplicate = 0"
        )
        client.close()
        assert old.rows() == [850]
        backup = World(world.s3, old, {}, backup="").backup_now()
        target = _tenant("rs-new", 1, tmp_path_factory, procs)

        result = world.restore(target, backup=backup, source="rs-old")

        assert result.returncode == 0, result.stderr
        assert "shard 0: 850 rows in place on " in result.stdout  # counted before merges
        assert "the backup's table is not the target's; copying rows" in result.stdout
        events = (  # each event once, whether its copies are merged yet or not
            f"SELECT sum(toUInt128(cityHash64({COLUMNS}))) AS v "  # noqa: S608
            f"FROM (SELECT DISTINCT {COLUMNS} FROM {{t}})"
        )
        assert target.per_host(events) == old.per_host(events)
        assert [int(v) for v in target.per_host("SELECT count() AS v FROM {t} FINAL")] == [800]
    finally:
        for started in procs:
            if started.proc is not None:
                stop_process(started.proc, grace=15, what="loopback ClickHouse")
