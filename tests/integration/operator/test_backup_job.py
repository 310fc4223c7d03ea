"""The backup CronJob's own command, run as the CronJob runs it, against the ClickHouse
engine and a real S3 (SeaweedFS).

Nothing of the job is copied by hand: the container's command and environment come from
the builder's rendered CronJob, and every ``secretKeyRef`` is resolved against the
Secrets the operator would create (``secrets.generated_secret``,
``secrets.backup_secret_data``). The hosts are ClickHouse-HTTP servers over chDB
(``tenantry_dev.loopback_server``, one process and data directory per host), and the
cluster DNS that would resolve each host's Service is stood in for by
``tests/support/resolver/sitecustomize.py``, loaded into the job's process through
PYTHONPATH (test-only; the product has no such override). Replicas mapped to a port
nothing listens on are hosts that do not answer.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tenantry_operator import backups, secrets
from tenantry_operator.builders import backup as backup_builder
from tenantry_operator.model import TenantModel
from tenantry_operator.normalize import tenant_model
from tenantry_operator.s3 import S3Config

from tenantry import contract
from tenantry.clickhouse import layout, open_client, schema
from tenantry.clickhouse.client import ClickHouseClient, quote_identifier
from tenantry_dev.services import free_port
from tests.support.loopback_hosts import Host, decoded, run_container, start_host
from tests.support.seaweed import S3Server
from tests.support.wait import stop_process

BUCKET = "tenant-backups"
RETENTION = 2
ROWS = (1200, 345)  # per shard


def _tenant() -> TenantModel:
    body = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "bk-acme", "uid": "0000-bk", "generation": 1},
        "spec": {
            "plan": "growth",
            "clickhouse": {"shards": 2, "replicas": 2},
            "backup": {"bucket": BUCKET, "prefix": "nightly/", "retention": RETENTION},
        },
    }
    return tenant_model(body)


@dataclass
class Stack:
    model: TenantModel
    container: dict[str, Any]
    admin_password: str
    hosts: dict[str, Host]  # by host name
    s3: S3Server

    def secrets(
        self, *, s3_secret: str | None = None, admin_password: str | None = None
    ) -> dict[str, dict[str, str]]:
        config = self.s3.config
        if s3_secret is not None:
            config = S3Config(config.endpoint, config.access_key_id, s3_secret)
        return {
            contract.CLICKHOUSE_SECRET: {
                contract.CLICKHOUSE_PASSWORD_KEYS["admin"]: admin_password or self.admin_password
            },
            contract.BACKUP_S3_SECRET: secrets.backup_secret_data(config),
        }

    def run(
        self,
        *,
        s3_secret: str | None = None,
        admin_password: str | None = None,
        down: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        """The CronJob's container command with its resolved env, as a subprocess."""
        data = self.secrets(s3_secret=s3_secret, admin_password=admin_password)
        dead = free_port()
        resolve = {
            name: f"127.0.0.1:{dead if name in down or h.proc is None else h.port}"
            for name, h in self.hosts.items()
        }
        return run_container(self.container, data, resolve=resolve)

    def client(self, name: str) -> ClickHouseClient:
        host = self.hosts[name]
        return open_client(f"http://admin:{self.admin_password}@127.0.0.1:{host.port}/")

    def secret_values(self) -> list[str]:
        return [self.admin_password, self.s3.access_key_id, self.s3.secret_access_key]


@pytest.fixture(scope="module")
def stack(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    model = _tenant()
    (cron,) = backup_builder.cron_jobs(model)
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    password = decoded(secrets.generated_secret(model, contract.CLICKHOUSE_SECRET))[
        contract.CLICKHOUSE_PASSWORD_KEYS["admin"]
    ]
    names = backup_builder.hosts(model)
    # Shard 0 answers on its first replica, shard 1 only on its second.
    live = {names[0][0], names[1][1]}
    hosts: dict[str, Host] = {}
    try:
        for shard in names:
            for name in shard:
                if name in live:
                    host = start_host(tmp_path_factory.mktemp("host"), password)
                    host.name = name
                else:
                    host = Host(name, 0, None)
                hosts[name] = host
        stack = Stack(model, container, password, hosts, s3_server)
        for shard, rows in zip(names, ROWS, strict=True):
            (name,) = [n for n in shard if n in live]
            client = stack.client(name)
            layout.provision(client, schema.TenantSchema(model.database, retention_days=30))
            client.command(
                f"INSERT INTO {quote_identifier(model.database)}.events (event_id, timestamp, "  # noqa: S608
                "event, user_id, properties) SELECT generateUUIDv4(), now64(3) - number, "
                "'click', toString(number % 7), '{}' FROM numbers({rows:UInt64})",
                {"rows": rows},
            )
            client.close()
        s3_server.client().create_bucket(Bucket=BUCKET)
        yield stack
    finally:
        for host in hosts.values():
            if host.proc is not None:
                stop_process(host.proc, grace=15, what="loopback ClickHouse")


def _objects(stack: Stack) -> dict[str, int]:
    root = f"nightly/{stack.model.name}/"
    pages = stack.s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=root)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _inventory(stack: Stack) -> backups.Inventory:
    return backups.inventory(_objects(stack), root=f"nightly/{stack.model.name}/")


def _manifest(stack: Stack, name: str) -> backups.Manifest:
    key = f"nightly/{stack.model.name}/{name}/{backups.MANIFEST}"
    body = stack.s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return backups.Manifest.model_validate_json(body)


def _no_secrets(stack: Stack, result: subprocess.CompletedProcess[str]) -> None:
    for value in stack.secret_values():
        assert value not in result.stdout + result.stderr


def test_the_cronjob_runs_the_tenantry_image_command() -> None:
    model = _tenant()
    (cron,) = backup_builder.cron_jobs(model)
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == model.ingestion.image  # the one Tenantry image
    assert container["command"] == ["tenantry", "backup"]
    env = {e["name"]: e for e in container["env"]}
    assert json.loads(env["TENANTRY_BACKUP_HOSTS"]["value"]) == backup_builder.hosts(model)
    assert env["TENANTRY_BACKUP_RETENTION"]["value"] == str(RETENTION)
    # secrets only by reference
    for name in ("TENANTRY_CLICKHOUSE_PASSWORD", "TENANTRY_S3_SECRET_ACCESS_KEY"):
        assert "value" not in env[name]


def test_backup_writes_every_shard_then_the_manifest(stack: Stack) -> None:
    before = set(_inventory(stack).complete)
    result = stack.run()
    assert result.returncode == 0, result.stderr
    _no_secrets(stack, result)
    found = _inventory(stack)
    (name,) = set(found.complete) - before
    manifest = _manifest(stack, name)
    names = backup_builder.hosts(stack.model)
    assert (manifest.tenant, manifest.database) == (stack.model.name, stack.model.database)
    assert (manifest.shards, manifest.replicas) == (2, 2)
    assert manifest.schema_version == schema.SCHEMA_VERSION
    client = stack.client(names[0][0])
    version = client.query("SELECT version() AS v")[0]["v"]
    assert manifest.engine_version == version
    assert [s.host for s in manifest.shard_backups] == [names[0][0], names[1][1]]
    assert [s.rows for s in manifest.shard_backups] == list(ROWS)
    # counted in the backup itself, per table (the Distributed-free 1-host schema here)
    assert [s.tables for s in manifest.shard_backups] == [{"events": n} for n in ROWS]
    for host in (names[0][0], names[1][1]):  # the read-back database is gone again
        with_check = stack.client(host)
        databases = {r["name"] for r in with_check.query("SHOW DATABASES")}
        with_check.close()
        assert f"{stack.model.database}_backup_check" not in databases
    objects = _objects(stack)
    for shard in manifest.shard_backups:
        prefix = f"nightly/{stack.model.name}/{name}/{shard.path}"
        assert f"{prefix}.backup" in objects  # ClickHouse's own backup metadata
        data = {
            k: v for k, v in objects.items() if k.startswith(prefix) and k != f"{prefix}.backup"
        }
        assert shard.bytes == sum(data.values()) > 0
        assert shard.files == len(data)
    # The backup is real: the engine restores shard 0's rows from it.
    destination = f"{stack.s3.endpoint}/{BUCKET}/nightly/{stack.model.name}/{name}/shard-0/"
    client.command(
        f"RESTORE DATABASE {stack.model.database} AS restored_check FROM S3("
        f"'{destination}', '{stack.s3.access_key_id}', '{stack.s3.secret_access_key}')"
    )
    assert client.query("SELECT count() AS n FROM restored_check.events")[0]["n"] == ROWS[0]
    client.command("DROP DATABASE restored_check SYNC")
    client.close()


def test_retention_keeps_the_newest_complete_backups(stack: Stack) -> None:
    root = f"nightly/{stack.model.name}/"
    raw = stack.s3.client()
    # A failed run's leftover (old, no manifest) and a run in progress (newer, no manifest).
    raw.put_object(Bucket=BUCKET, Key=f"{root}20200101T000000.000Z/shard-0/x", Body=b"x")
    raw.put_object(Bucket=BUCKET, Key=f"{root}29991231T000000.000Z/shard-0/x", Body=b"x")
    made, logs = [], ""
    for _ in range(RETENTION + 2):
        before = set(_inventory(stack).complete)
        result = stack.run()
        assert result.returncode == 0, result.stderr
        logs += result.stdout
        made += sorted(set(_inventory(stack).complete) - before)
    found = _inventory(stack)
    assert found.complete == made[-RETENTION:]
    assert found.incomplete == ["29991231T000000.000Z"]
    assert "retention: deleted backup 20200101T000000.000Z" in logs
    raw.delete_object(Bucket=BUCKET, Key=f"{root}29991231T000000.000Z/shard-0/x")


def test_wrong_s3_key_fails_clearly_and_writes_nothing(stack: Stack) -> None:
    before = _objects(stack)
    result = stack.run(s3_secret="not-the-secret")
    assert result.returncode == 1
    assert "backup failed:" in result.stderr
    assert f"S3 refused it in bucket {BUCKET} (403: the access key or secret is wrong" in (
        result.stderr
    )
    assert "not-the-secret" not in result.stdout + result.stderr
    _no_secrets(stack, result)
    assert _objects(stack) == before


def test_shard_without_an_answering_replica_fails_and_leaves_no_manifest(stack: Stack) -> None:
    names = backup_builder.hosts(stack.model)
    before = _objects(stack)
    result = stack.run(down=(names[1][1],))
    assert result.returncode == 1
    assert "backup failed: shard 1: no replica answered" in result.stderr
    for name in names[1]:
        assert f"{name}: [Errno 111] Connection refused" in result.stderr
    assert "Unexpected Http Driver Exception" not in result.stderr  # the job's words only
    _no_secrets(stack, result)
    # shard 0 was uploaded, then removed again: no manifest, no leftover
    assert _objects(stack) == before


def test_a_refused_clickhouse_password_fails_at_once(stack: Stack) -> None:
    before = _objects(stack)
    result = stack.run(admin_password="not-the-password")
    assert result.returncode == 1
    first = backup_builder.hosts(stack.model)[0][0]
    assert (
        f"backup failed: shard 0 on {first}: ClickHouse refused user admin "
        "(authentication failed)" in result.stderr
    )
    assert "not-the-password" not in result.stdout + result.stderr
    _no_secrets(stack, result)
    assert _objects(stack) == before
