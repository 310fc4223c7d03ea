"""``tenantry backup``: what the tenant's backup CronJob runs (the Tenantry image).

One run backs up the tenant's database on every shard, records the backup in a
manifest, and enforces retention:

1. S3 is checked first (the bucket exists, the credentials may use it), so wrong
   credentials fail in a second with S3's own error code, before any server works;
2. on every shard at once (a thread per shard, each with its own client, so the
   shards' snapshots are close in time and the backup takes its slowest shard's
   time), the first replica that answers (ClickHouse HTTP on the host's own Service,
   ``ch-s<n>-r<m>``) runs ``BACKUP DATABASE <db> TO S3(...) ASYNC``; the job polls
   ``system.backups`` until it is done (first after 50 ms, the interval doubling up to
   a second), so a long backup never depends on one HTTP request staying open. The
   server uploads straight to S3. The rows of each table are then read from the
   backup itself (a read-only ``Backup`` database over it): exact, and proof that the
   server reads the backup back. A replica that does not answer is skipped; a BACKUP
   the server refuses fails the shard (another replica would meet the same S3 or
   engine error), after the other shards have ended;
3. only when every shard succeeded is ``manifest.json`` written: a backup without one
   is incomplete and never counts (``backups``);
4. retention: the ``TENANTRY_BACKUP_RETENTION`` newest complete backups are kept; older
   ones, and incomplete leftovers older than the newest complete one, are deleted.

On failure it prints one line naming the shard, host and cause to stderr, removes what
this run wrote if S3 lets it, and exits 1 (the Job fails, the operator reports it).
Secrets (the ClickHouse password, the S3 keys) are never printed: every message goes
through ``redact``. Why the Tenantry image rather than clickhouse-client in the
ClickHouse image: the same code runs in tests (``tests/integration/operator/
test_backup_job.py`` executes the CronJob's own command), it can write the manifest and
delete expired backups with boto3, and it needs no ClickHouse binary.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import quote

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tenantry.backoff import Backoff
from tenantry.clickhouse import open_client, schema
from tenantry.clickhouse.client import ClickHouseClient, ClickHouseError, quote_identifier
from tenantry.clickhouse.client import quote_string as sql_string
from tenantry.settings import from_mapping
from tenantry_operator import backups, s3
from tenantry_operator.redaction import redact

AWS_ENDPOINT = "https://s3.amazonaws.com"
AUTHENTICATION_FAILED = 516  # ClickHouse's error code


def _json_hosts(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise ValueError("must be a JSON list of lists of host names") from None


class ClusterJobSettings(BaseSettings):
    """What the backup and the restore job both read from their environment (rendered
    by ``builders.backup``): the tenant's hosts, ClickHouse admin access, the bucket."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_ignore_empty=True, use_attribute_docstrings=True
    )

    tenant: str = Field(validation_alias="TENANTRY_TENANT")
    """The Tenant whose database is backed up."""
    database: str = Field(validation_alias="TENANTRY_CLICKHOUSE_DATABASE")
    """The tenant's ClickHouse database."""
    hosts: Annotated[list[list[str]], NoDecode, BeforeValidator(_json_hosts)] = Field(
        validation_alias="TENANTRY_BACKUP_HOSTS"
    )
    """JSON list, per shard, of its replicas' host names, in the order they are tried."""
    clickhouse_port: int = Field(8123, ge=1, le=65535, validation_alias="TENANTRY_CLICKHOUSE_PORT")
    """ClickHouse HTTP port of every host."""
    clickhouse_user: str = Field("admin", validation_alias="TENANTRY_CLICKHOUSE_USER")
    """ClickHouse user that runs BACKUP."""
    clickhouse_password: SecretStr = Field(
        SecretStr(""), validation_alias="TENANTRY_CLICKHOUSE_PASSWORD", repr=False
    )
    """Its password (from Secret clickhouse-credentials)."""
    bucket: str = Field(validation_alias="TENANTRY_BACKUP_BUCKET")
    """S3 bucket of the backups."""
    prefix: str = Field("", validation_alias="TENANTRY_BACKUP_PREFIX")
    """Key prefix in the bucket; the tenant name is appended."""
    s3_endpoint: str = Field(AWS_ENDPOINT, validation_alias="TENANTRY_S3_ENDPOINT")
    """S3 endpoint (AWS when unset), as reachable from the job and the ClickHouse hosts."""
    s3_access_key_id: SecretStr = Field(validation_alias="TENANTRY_S3_ACCESS_KEY_ID", repr=False)
    """S3 access key id."""
    s3_secret_access_key: SecretStr = Field(
        validation_alias="TENANTRY_S3_SECRET_ACCESS_KEY", repr=False
    )
    """S3 secret access key."""
    s3_region: str = Field("us-east-1", validation_alias="TENANTRY_S3_REGION")
    """S3 region."""
    poll_seconds: ClassVar[float] = 1.0

    @property
    def s3(self) -> s3.S3Config:
        return s3.S3Config(
            endpoint=self.s3_endpoint.rstrip("/"),
            access_key_id=self.s3_access_key_id.get_secret_value(),
            secret_access_key=self.s3_secret_access_key.get_secret_value(),
            region=self.s3_region,
        )

    def secrets(self) -> list[str]:
        """Values that must never be printed."""
        values = (self.clickhouse_password, self.s3_access_key_id, self.s3_secret_access_key)
        return [v.get_secret_value() for v in values if v.get_secret_value()]


class JobSettings(ClusterJobSettings):
    """The backup job's environment (rendered by ``builders.backup``)."""

    retention: int = Field(ge=1, le=365, validation_alias="TENANTRY_BACKUP_RETENTION")
    """How many complete backups to keep."""


class JobFailed(Exception):
    """A backup or restore cannot complete; the message says where and why (secrets
    redacted by the caller)."""


class BackupFailed(JobFailed):
    """The backup cannot complete."""


_OS_ERROR = re.compile(r"\[Errno -?\d+\] [^\"')]+")


def unreachable(message: str) -> str:
    """Why a host did not answer, in a few words (the socket's error when there is one)."""
    found = _OS_ERROR.search(message)
    return found.group(0).strip() if found else first_line(message)[:300]


_DRIVER_PREFIX = re.compile(r"^Received ClickHouse exception, code: \d+, server response: ")


_SAY = threading.Lock()  # the jobs work on every shard at once: one line at a time
T = TypeVar("T")


def say(line: str, secrets: list[str]) -> None:
    """Print one line of a job's log, ``secrets`` redacted, whole even when shards'
    threads speak at once."""
    text = redact(line, secrets)
    with _SAY:
        print(text, flush=True)


def at_once(work: Callable[[int], T], shards: int, *, name: str) -> list[T]:
    """``work(shard)`` for every shard at once, a thread each; the results in shard
    order. Every shard has ended when this returns or raises (the first failing
    shard's error in shard order), so the caller may clean up after all of them."""
    with ThreadPoolExecutor(max_workers=shards, thread_name_prefix=name) as pool:
        running = [pool.submit(work, shard) for shard in range(shards)]
        return [future.result() for future in running]


def first_line(message: str) -> str:
    """ClickHouse's message without the stack trace it appends (nor the HTTP client's
    preamble, which repeats the code)."""
    head = _DRIVER_PREFIX.sub("", message.split(", Stack trace", 1)[0])
    return " ".join(head.split())[:800]


def _url(settings: ClusterJobSettings, host: str) -> str:
    user = quote(settings.clickhouse_user, safe="")
    password = quote(settings.clickhouse_password.get_secret_value(), safe="")
    return f"http://{user}:{password}@{host}:{settings.clickhouse_port}/"


def answering(
    settings: ClusterJobSettings, shard: int, *, log: Callable[[str], None]
) -> tuple[str, ClickHouseClient]:
    """The first replica of ``shard`` that answers, with a client on it (JobFailed when
    none does, or at once when ClickHouse refuses the user: every replica has the same
    users)."""
    tried = []
    for host in settings.hosts[shard]:
        client = None
        try:
            client = open_client(_url(settings, host))
            client.query("SELECT 1")
        except (ClickHouseError, OSError) as err:
            if client is not None:
                client.close()
            if isinstance(err, ClickHouseError) and err.code == AUTHENTICATION_FAILED:
                raise JobFailed(
                    f"shard {shard} on {host}: ClickHouse refused user "
                    f"{settings.clickhouse_user} (authentication failed)"
                ) from None
            tried.append(f"{host}: {unreachable(str(err))}")
            log(f"shard {shard}: {host} does not answer, trying the next replica")
            continue
        return host, client
    raise JobFailed(f"shard {shard}: no replica answered ({'; '.join(tried)})")


class Job:
    """One run of the backup job."""

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings
        self.store = backups.Store(
            settings.s3, bucket=settings.bucket, prefix=settings.prefix, tenant=settings.tenant
        )

    def log(self, line: str) -> None:
        say(line, self.settings.secrets())

    # -- ClickHouse ---------------------------------------------------------------------
    def _answering(self, shard: int) -> tuple[str, ClickHouseClient]:
        return answering(self.settings, shard, log=self.log)

    def _backup_shard(self, name: str, shard: int) -> tuple[backups.ShardBackup, str]:
        s = self.settings
        host, client = self._answering(shard)
        try:
            version = str(client.query("SELECT version() AS v")[0]["v"])
            target = (
                f"S3({sql_string(f'{s.s3.endpoint}/{self.store.url(name, shard)}')}, "
                f"{sql_string(s.s3.access_key_id)}, {sql_string(s.s3.secret_access_key)})"
            )
            self.log(f"shard {shard}: backing up {s.database} from {host}")
            started = client.query(
                f"BACKUP DATABASE {quote_identifier(s.database)} TO {target} ASYNC"
            )
            done = self._wait(client, str(started[0]["id"]), shard=shard, host=host)
            tables = self._rows_in_backup(client, target)
        except ClickHouseError as err:
            raise BackupFailed(f"shard {shard} on {host}: {first_line(str(err))}") from None
        finally:
            client.close()
        result = backups.ShardBackup(
            shard=shard,
            host=host,
            path=f"{backups.shard_dir(shard)}/",
            rows=sum(tables.values()),
            tables=tables,
            bytes=int(done["total_size"]),
            files=int(done["num_files"]),
        )
        self.log(f"shard {shard}: {result.rows} rows, {result.bytes} bytes from {result.host}")
        return result, version

    def _backup_all(self, name: str) -> list[tuple[backups.ShardBackup, str]]:
        """Every shard backed up at once; all have ended when this returns or raises
        (the first failing shard's error), so nothing uploads after a discard."""
        return at_once(
            lambda shard: self._backup_shard(name, shard), len(self.settings.hosts), name="backup"
        )

    def _rows_in_backup(self, client: ClickHouseClient, target: str) -> dict[str, int]:
        """The rows of each table as the backup holds them, read by the engine from the
        backup itself (a read-only ``Backup`` database over it): exact whatever was
        inserted meanwhile, and proof that the server can read the backup back."""
        check = quote_identifier(f"{self.settings.database}_backup_check")
        source = sql_string(self.settings.database)
        client.command(f"DROP DATABASE IF EXISTS {check}")  # a killed run's leftover
        client.command(f"CREATE DATABASE {check} ENGINE = Backup({source}, {target})")
        try:
            found = client.query(
                "SELECT name, total_rows FROM system.tables "
                "WHERE database = {db:String} AND total_rows IS NOT NULL ORDER BY name",
                {"db": f"{self.settings.database}_backup_check"},
            )
        finally:
            client.command(f"DROP DATABASE IF EXISTS {check}")
        return {str(row["name"]): int(row["total_rows"]) for row in found}

    def _wait(
        self, client: ClickHouseClient, backup_id: str, *, shard: int, host: str
    ) -> Mapping[str, Any]:
        polls = Backoff(first=0.05, cap=self.settings.poll_seconds)
        looked = 0
        while True:
            found = client.query(
                "SELECT status, error, total_size, num_files FROM system.backups "
                "WHERE id = {id:String}",
                {"id": backup_id},
            )
            if not found:
                raise BackupFailed(f"shard {shard} on {host}: the server lost backup {backup_id}")
            row = found[0]
            if row["status"] == "BACKUP_CREATED":
                return row
            if row["status"] != "CREATING_BACKUP":
                cause = first_line(str(row["error"])) or str(row["status"])
                raise BackupFailed(f"shard {shard} on {host}: BACKUP failed: {cause}")
            looked += 1
            time.sleep(polls.delay(looked))

    # -- the run --------------------------------------------------------------------------
    def run(self) -> backups.Manifest:
        """Back up every shard, write the manifest, apply retention; raises JobFailed
        or s3.S3Error."""
        s = self.settings
        self.store.check()
        started = dt.datetime.now(dt.UTC)
        name = backups.new_name(started)
        self.log(f"backup {name} of tenant {s.tenant} ({len(s.hosts)} shard(s))")
        try:
            done = self._backup_all(name)
        except JobFailed:
            self._discard(name)
            raise
        shard_backups = [result for result, _ in done]
        versions = {version for _, version in done}
        manifest = backups.Manifest(
            name=name,
            tenant=s.tenant,
            database=s.database,
            started=started,
            finished=dt.datetime.now(dt.UTC),
            shards=len(s.hosts),
            replicas=max(len(r) for r in s.hosts),
            schema_version=schema.SCHEMA_VERSION,
            engine_version=",".join(sorted(versions)),
            shard_backups=shard_backups,
        )
        self.store.write_manifest(manifest)
        self.log(f"backup {name} complete: {manifest.rows} rows, {manifest.bytes} bytes")
        for old in backups.expired(self.store.inventory(), keep=s.retention):
            count = self.store.delete(old)
            self.log(f"retention: deleted backup {old} ({count} objects)")
        return manifest

    def _discard(self, name: str) -> None:
        """Best effort: remove what this failed run uploaded (a later run's retention
        removes it otherwise)."""
        try:
            self.store.delete(name)
        except s3.S3Error as err:
            self.log(f"could not remove the incomplete backup {name}: {err}")


S = TypeVar("S", bound=ClusterJobSettings)


def run_main(
    what: str,
    settings_model: type[S],
    run: Callable[[S], object],
    env: Mapping[str, str] | None,
) -> int:
    """A job's entry point: 0 when ``run`` succeeded, 1 when it failed (one line on
    stderr, secrets redacted), 2 when the environment is not usable."""
    from tenantry.settings import SettingsError

    try:
        settings = from_mapping(settings_model, os.environ if env is None else env)
    except SettingsError as err:
        print(f"{what}: configuration: {err}", file=sys.stderr)
        return 2
    if not settings.hosts or not all(settings.hosts):
        print(f"{what}: configuration: TENANTRY_BACKUP_HOSTS names no hosts", file=sys.stderr)
        return 2
    # clickhouse-connect logs every failed connection on its own; the job reports them.
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    try:
        run(settings)
    except (JobFailed, s3.S3Error) as err:
        print(f"{what} failed: {redact(str(err), settings.secrets())}", file=sys.stderr)
        return 1
    return 0


def main(env: Mapping[str, str] | None = None) -> int:
    """Entry point of ``tenantry backup``: 0 when the backup is complete, 1 when it
    failed, 2 when the environment is not usable."""
    return run_main("backup", JobSettings, lambda settings: Job(settings).run(), env)
