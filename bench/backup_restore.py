"""Backup and restore of a tenant's events: `tenantry backup` / `tenantry restore` against
the engine's own BACKUP ... TO S3 / RESTORE ... FROM S3 of the same data, in the same run.

Target (issue 14): each of ours takes at most 1.2 x the engine's own time.

What runs, all on this machine: SeaweedFS (S3, on loopback) and two ClickHouse hosts,
each the loopback server over chDB in a process and data directory of its own (the
stand-in of tests/support/loopback_hosts.py): the source tenant's host, holding N
events, and the target tenant's host, empty. Both tenants are 1 shard x 1 replica.

- ours, backup: the backup CronJob's own container (command and env as the builder
  renders them, Secrets resolved as the kubelet would). It checks S3, runs
  ``BACKUP DATABASE ... TO S3 ... ASYNC`` and polls it, counts the rows in the backup
  (attaching it as a ``Backup`` database), writes the manifest and applies retention.
- engine, backup: ``BACKUP DATABASE <db> TO S3(...)`` on the same host, to another
  prefix of the same bucket: the server's work alone.
- ours, restore: the restore Job's own container into the empty target (emptied again
  between runs, so every run is the same work): S3 check,
  manifest, staging table, rows copied from the attached backup by the sharding key,
  verification against the manifest, partitions attached.
- engine, restore: ``RESTORE DATABASE <db> AS <other> FROM S3(...)`` on the target host,
  from the engine's own backup.

Each pair runs in alternation (ours, engine, ours, engine ...) ``--repeat`` times and the
median is reported, so a burst of load on this shared machine hits both sides alike.

Run: ``.venv/bin/python bench/backup_restore.py [--rows N] [--repeat K]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenantry_operator import secrets
from tenantry_operator.builders import backup as backup_builder
from tenantry_operator.builders import restore as restore_builder
from tenantry_operator.dataplane.schema_step import tenant_schema
from tenantry_operator.model import TenantModel
from tenantry_operator.normalize import tenant_model

from bench.common import cpu_model
from tenantry import contract
from tenantry.clickhouse import layout, open_client
from tenantry.clickhouse.client import ClickHouseClient, quote_identifier
from tests.support.loopback_hosts import (
    RESOLVER,
    Host,
    decoded,
    resolve_env,
    start_host,
)
from tests.support.seaweed import S3Server, seaweed
from tests.support.wait import stop_process

BUCKET = "bench-backups"
TIMEOUT = 3600.0  # one run of a job, at most


def _model(name: str) -> TenantModel:
    body = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name, "uid": f"0000-{name}", "generation": 1},
        "spec": {
            "plan": "growth",
            "clickhouse": {"shards": 1, "replicas": 1},
            "backup": {"bucket": BUCKET, "retention": 30},
        },
    }
    return tenant_model(body)


class Tenant:
    def __init__(self, name: str, directory: Path) -> None:
        self.model = _model(name)
        self.password = decoded(secrets.generated_secret(self.model, contract.CLICKHOUSE_SECRET))[
            contract.CLICKHOUSE_PASSWORD_KEYS["admin"]
        ]
        ((self.host_name,),) = backup_builder.hosts(self.model)
        directory.mkdir(parents=True)
        self.host: Host = start_host(directory, self.password)
        try:
            with closing(self.client()) as client:
                layout.provision(client, tenant_schema(self.model))
        except BaseException:
            self.stop()  # started here, so stopped here when the caller never gets it
            raise

    def client(self) -> ClickHouseClient:
        return open_client(f"http://admin:{self.password}@127.0.0.1:{self.host.port}/")

    @property
    def events(self) -> str:
        return f"{quote_identifier(self.model.database)}.events"

    def count(self, table: str | None = None) -> int:
        with closing(self.client()) as client:
            return int(client.query(f"SELECT count() AS n FROM {table or self.events}")[0]["n"])  # noqa: S608

    def stop(self) -> None:
        if self.host.proc is not None:
            stop_process(self.host.proc, grace=15, what="loopback ClickHouse")


def _run(
    container: Mapping[str, Any], secret_data: Mapping[str, Mapping[str, str]], tenant: Tenant
) -> None:
    """The container's own command with its env as the kubelet would give it."""
    env = resolve_env(container, secret_data)
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "PYTHONPATH": str(RESOLVER),
            "TENANTRY_TEST_RESOLVE": json.dumps(
                {tenant.host_name: f"127.0.0.1:{tenant.host.port}"}
            ),
        }
    )
    done = subprocess.run(
        list(container["command"]) + list(container.get("args", [])),
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{container['command']} failed: {done.stderr.strip()[-2000:]}")


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({cpu_model()}), "
        f"Python {platform.python_version()}, load average {load[0]:.1f} {load[1]:.1f}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp,
        seaweed(Path(tmp) / "s3") as s3,
    ):
        tenants: list[Tenant] = []
        try:
            _bench(s3, Path(tmp), tenants, rows=args.rows, repeat=args.repeat)
        finally:
            for tenant in tenants:
                tenant.stop()


def _secret_data(s3: S3Server, tenant: Tenant) -> dict[str, dict[str, str]]:
    return {
        contract.CLICKHOUSE_SECRET: {contract.CLICKHOUSE_PASSWORD_KEYS["admin"]: tenant.password},
        contract.BACKUP_S3_SECRET: secrets.backup_secret_data(s3.config),
    }


def _bench(s3: S3Server, tmp: Path, tenants: list[Tenant], *, rows: int, repeat: int) -> None:
    source = Tenant("bench-src", tmp / "src")
    tenants.append(source)
    target = Tenant("bench-dst", tmp / "dst")
    tenants.append(target)
    s3.client().create_bucket(Bucket=BUCKET)
    started = time.perf_counter()
    with closing(source.client()) as client:
        client.command(
            f"INSERT INTO {source.events} (event_id, timestamp, event, user_id, properties) "  # noqa: S608
            "SELECT generateUUIDv4(), now64(3) - number % 2000000, "
            "['click', 'view', 'signup', 'purchase'][number % 4 + 1], "
            "toString(number % 50000), concat('{\"i\":', toString(number), '}') "
            "FROM numbers({rows:UInt64})",
            {"rows": rows},
        )
        client.command(f"OPTIMIZE TABLE {source.events} FINAL")
        (size,) = client.query(
            "SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE active "
            "AND database = {db:String} AND table = 'events'",
            {"db": source.model.database},
        )
    print(
        f"# {rows:,} events inserted in {time.perf_counter() - started:.1f} s, "
        f"{int(size['b']) / 2**20:.0f} MiB on disk; 1 shard x 1 replica each side; "
        f"median of {repeat} alternating runs"
    )

    (cron,) = backup_builder.cron_jobs(source.model)
    (backup_container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    key, secret = s3.access_key_id, s3.secret_access_key
    ours_backup: list[float] = []
    engine_backup: list[float] = []
    for i in range(repeat):
        ours_backup.append(_timed(lambda: _run(backup_container, _secret_data(s3, source), source)))

        def engine_backup_once(i: int = i) -> None:
            url = f"{s3.endpoint}/{BUCKET}/engine/{i}/"
            with closing(source.client()) as client:
                client.command(
                    f"BACKUP DATABASE {quote_identifier(source.model.database)} "
                    "TO S3({url:String}, {key:String}, {secret:String})",
                    {"url": url, "key": key, "secret": secret},
                )

        engine_backup.append(_timed(engine_backup_once))

    ours_restore: list[float] = []
    engine_restore: list[float] = []
    for i in range(repeat):
        job = restore_builder.job(
            target.model,
            name="restore-bench",
            source_tenant=source.model.name,
            backup_name="latest",
            overwrite=False,  # into an empty target, as the engine's RESTORE
        )
        (container,) = job["spec"]["template"]["spec"]["containers"]
        data = _secret_data(s3, target)

        def ours_restore_once(c: Mapping[str, Any] = container, d: Any = data) -> None:
            _run(c, d, target)

        ours_restore.append(_timed(ours_restore_once))
        restored = target.count()
        if restored != rows:
            raise RuntimeError(f"ours restored {restored} rows, not {rows}")

        database = f"engine_restore_{i}"

        def engine_restore_once(i: int = i, database: str = database) -> None:
            url = f"{s3.endpoint}/{BUCKET}/engine/{i}/"
            with closing(target.client()) as client:
                client.command(
                    f"RESTORE DATABASE {quote_identifier(source.model.database)} "
                    f"AS {quote_identifier(database)} "
                    "FROM S3({url:String}, {key:String}, {secret:String})",
                    {"url": url, "key": key, "secret": secret},
                )

        engine_restore.append(_timed(engine_restore_once))
        restored = target.count(f"{quote_identifier(database)}.events")
        if restored != rows:
            raise RuntimeError(f"the engine restored {restored} rows, not {rows}")
        with closing(target.client()) as client:
            client.command(f"DROP DATABASE {quote_identifier(database)} SYNC")
            client.command(f"TRUNCATE TABLE {target.events} SYNC")  # empty for the next run

    print("| step | ours (s) | engine (s) | ours rows/s | engine rows/s | ours / engine |")
    print("|---|---|---|---|---|---|")
    for step, ours, engine in (
        ("backup", ours_backup, engine_backup),
        ("restore", ours_restore, engine_restore),
    ):
        o, e = statistics.median(ours), statistics.median(engine)
        print(
            f"| {step} | {o:.1f} | {e:.1f} | {rows / o:,.0f} | {rows / e:,.0f} | **{o / e:.2f}x** |"
        )
    print(f"# all runs (s): backup ours {_fmt(ours_backup)} engine {_fmt(engine_backup)}; ")
    print(f"#   restore ours {_fmt(ours_restore)} engine {_fmt(engine_restore)}")


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
