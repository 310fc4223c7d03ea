"""``tenantry restore``: what a tenant's restore Job runs (the Tenantry image).

It brings one complete backup (``latest`` or a name, of this tenant or another one)
into the tenant's database, whatever the two layouts are, and touches the target
tables only once everything that can fail on bad input has passed:

1. **Resolve.** S3 is checked as the backup job does (wrong credentials fail here, with
   S3's code). ``latest`` is the newest *complete* backup; a name without a manifest is
   incomplete and refused; an unknown name is refused. The manifest's schema version
   must not be newer than this image's (``schema.SCHEMA_VERSION``), and no target
   engine may be older than the one that took the backup.
2. **Refuse to overwrite.** The storing table of every target shard (first answering
   replica) is counted: rows there fail the restore unless ``overwrite`` is set.
3. **Stage** on every target shard ``k`` of ``K`` at once (a thread per shard, each
   with its own client), in a database of its own
   (``<db>_restore``) that nothing else reads: a MergeTree with the storing table's
   structure (TTL merges stopped, so rows past the retention are not dropped while
   counted), filled from each source shard's backup through a read-only ``Backup``
   database over it (the server reads S3 itself; no row passes through the job),
   keeping the rows with ``SHARDING_KEY % K = k``: the shard the Distributed table
   would send each row to. Every row of the backup satisfies that for exactly one
   ``k``, so the rows arrive exactly once in any shard count, and no interserver
   traffic is needed. Before reading a source shard, its row count in the backup is
   compared with the manifest (a corrupt or foreign backup fails here).
   With as many target shards as the source had, and no replicas in the source, shard
   ``k`` is instead the engine's own ``RESTORE TABLE ... AS`` of source shard ``k``
   (files copied as they are), unless the backed-up table's columns or keys differ
   from the target's (an older schema version); the table is then checked (CHECK
   TABLE: a corrupt data object fails its part's checksums) and its rows counted against
   the manifest the same way (docs/backup-restore.md, 2.3).
4. **Verify.** The staged rows of all target shards must add up to the manifest's rows.
5. **Move into place**, per shard and partition: ``ATTACH PARTITION ... FROM`` (hard
   links; on a replicated target Keeper replicates the attached parts), or with
   ``overwrite`` ``REPLACE PARTITION`` and ``DROP PARTITION`` for partitions the backup
   does not hold. Each target shard is counted again afterwards, with the target's
   merges stopped from the first move to the count (its engine collapses events stored
   twice at merge time, which would make a true restore count short).

Progress: beside its readable lines, the job prints one ``restore-progress`` line per
step (the plan, then each shard's Staging, Staged and InPlace with its rows:
``restore_progress``), which the operator reads from the Job's log into the Restore's
status.

The staging databases are dropped at the end, on success and on failure. Any failure in
steps 1-4 leaves the target tables as they were. A failure in step 5 (a server lost
mid-move) is reported as such, naming the shard; running the restore again with
``overwrite`` starts over cleanly.

Only the events' storing table is restored (``events`` or ``events_local``, whichever
the backup holds): materialized views are rebuilt by the operator from the Dashboards'
current SQL, never restored stale. Why a Job in the Tenantry image rather than the
operator driving the servers (docs/backup-restore.md, 2.2): the test runs exactly this
command and environment, and a restore that takes hours never ties up the operator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from tenantry.api.restore import ShardPhase
from tenantry.clickhouse import schema
from tenantry.clickhouse.client import (
    ClickHouseClient,
    ClickHouseError,
    Params,
    Row,
    quote_identifier,
)
from tenantry.clickhouse.client import quote_string as sql_string
from tenantry.clickhouse.schema import EVENT_COLUMNS, EVENTS, EVENTS_LOCAL
from tenantry_operator import backups, restore_progress
from tenantry_operator.backup_job import (
    ClusterJobSettings,
    JobFailed,
    answering,
    at_once,
    first_line,
    run_main,
    say,
)

LATEST = "latest"
STAGING_SUFFIX = "_restore"
_VERSION = re.compile(r"\d+")


class RestoreSettings(ClusterJobSettings):
    """The restore job's environment (rendered by ``builders.restore``)."""

    source_tenant: str = Field("", validation_alias="TENANTRY_RESTORE_SOURCE_TENANT")
    """Whose backups are restored (their key prefix in the bucket); empty: this tenant."""
    backup: str = Field(LATEST, validation_alias="TENANTRY_RESTORE_BACKUP")
    """`latest` (the newest complete backup) or a backup's name."""
    overwrite: bool = Field(False, validation_alias="TENANTRY_RESTORE_OVERWRITE")
    """Replace rows the tenant's tables hold; false: refuse when they hold any."""
    retention_days: int = Field(ge=1, validation_alias="TENANTRY_CLICKHOUSE_RETENTION_DAYS")
    """The tenant's retention (the staging table has the storing table's structure)."""

    @property
    def source(self) -> str:
        return self.source_tenant or self.tenant


class RestoreFailed(JobFailed):
    """The restore cannot complete."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in _VERSION.findall(text)[:4])


def local_table(*, shards: int, replicas: int) -> str:
    """The table that stores the rows in a layout (`schema.TenantSchema.local_table`)."""
    return EVENTS_LOCAL if shards * replicas > 1 else EVENTS


class Job:
    """One run of the restore job."""

    def __init__(self, settings: RestoreSettings) -> None:
        self.settings = settings
        self.store = backups.Store(
            settings.s3, bucket=settings.bucket, prefix=settings.prefix, tenant=settings.source
        )
        shards = len(settings.hosts)
        replicas = max(len(r) for r in settings.hosts)
        self.table = local_table(shards=shards, replicas=replicas)
        self.staging = f"{settings.database}{STAGING_SUFFIX}"

    def log(self, line: str) -> None:
        say(line, self.settings.secrets())

    # -- 1. resolve ---------------------------------------------------------------------
    def resolve(self) -> backups.Manifest:
        s = self.settings
        self.store.check()
        found = self.store.inventory()
        name = found.newest if s.backup == LATEST else s.backup
        where = f"tenant {s.source} in bucket {s.bucket}"
        if name is None:
            raise RestoreFailed(f"no complete backup of {where}")
        if name not in found.complete:
            if name in found.incomplete:
                raise RestoreFailed(
                    f"backup {name} of {where} is incomplete (no manifest): never restored from"
                )
            raise RestoreFailed(f"no backup {name} of {where}")
        manifest = self.store.read_manifest(name)
        if manifest.schema_version > schema.SCHEMA_VERSION:
            raise RestoreFailed(
                f"backup {name} holds schema version {manifest.schema_version}; this image "
                f"knows up to {schema.SCHEMA_VERSION}"
            )
        return manifest

    @staticmethod
    def source_table(shard: backups.ShardBackup) -> str:
        return EVENTS_LOCAL if EVENTS_LOCAL in shard.tables else EVENTS

    # -- the run --------------------------------------------------------------------------
    def run(self) -> int:
        """Restore; returns the rows restored. Raises JobFailed or s3.S3Error."""
        s = self.settings
        manifest = self.resolve()
        expected = sum(sb.tables.get(self.source_table(sb), 0) for sb in manifest.shard_backups)
        self.log(
            f"restoring backup {manifest.name} of tenant {manifest.tenant} "
            f"({manifest.shards}x{manifest.replicas}, {expected} rows) into {s.database} "
            f"({len(s.hosts)} shard(s))"
        )
        clients: list[tuple[str, ClickHouseClient]] = []
        try:
            for shard in range(len(s.hosts)):
                clients.append(answering(s, shard, log=self.log))
            self.log(
                restore_progress.plan_line(backup=manifest.name, rows=expected, shards=len(clients))
            )
            self._check_engines(manifest, clients)
            self._check_empty(clients)
            staged = self._stage_all(manifest, clients)
            if sum(staged) != expected:
                raise RestoreFailed(
                    f"staged {sum(staged)} rows, the manifest of {manifest.name} counts "
                    f"{expected}: nothing restored"
                )
            self.log(f"verified: {expected} rows staged on {len(clients)} shard(s)")
            for shard, (host, client) in enumerate(clients):
                self._move(shard, host, client, rows=staged[shard])
        finally:
            for _host, client in clients:
                self._drop_staging(client)
                client.close()
        self.log(f"restore of {manifest.name} complete: {expected} rows")
        return expected

    def _check_engines(
        self, manifest: backups.Manifest, clients: list[tuple[str, ClickHouseClient]]
    ) -> None:
        wanted = max(_version(v) for v in manifest.engine_version.split(",") if v)
        for shard, (host, client) in enumerate(clients):
            found = str(self._query(client, shard, host, "SELECT version() AS v")[0]["v"])
            if _version(found) < wanted:
                raise RestoreFailed(
                    f"shard {shard} on {host}: engine {found} is older than "
                    f"{manifest.engine_version}, which took backup {manifest.name}"
                )

    def _table(self, database: str) -> str:
        return f"{quote_identifier(database)}.{quote_identifier(self.table)}"

    def _count(self, client: ClickHouseClient, shard: int, host: str, database: str) -> int:
        sql = f"SELECT count() AS n FROM {self._table(database)}"  # noqa: S608
        found = self._query(client, shard, host, sql)
        return int(found[0]["n"])

    def _check_empty(self, clients: list[tuple[str, ClickHouseClient]]) -> None:
        full = [
            f"shard {shard} on {host}: {rows} rows"
            for shard, (host, client) in enumerate(clients)
            if (rows := self._count(client, shard, host, self.settings.database))
        ]
        if not full:
            return
        if not self.settings.overwrite:
            raise RestoreFailed(
                f"{self.settings.database} is not empty ({'; '.join(full)}); "
                "restore with overwrite to replace its rows"
            )
        self.log(f"overwrite: replacing the rows of {self.settings.database} ({'; '.join(full)})")

    # -- 3. stage -------------------------------------------------------------------------
    def _stage_all(
        self, manifest: backups.Manifest, clients: list[tuple[str, ClickHouseClient]]
    ) -> list[int]:
        """Every target shard staged at once, each on its own host through its own
        client: a restore takes as long as its slowest shard, not the sum of them. All
        have ended when this returns or raises (the first failing shard's error), so
        the staging databases can be dropped."""
        return at_once(
            lambda shard: self._stage(manifest, shard, *clients[shard]), len(clients), name="stage"
        )

    def _stage(
        self, manifest: backups.Manifest, shard: int, host: str, client: ClickHouseClient
    ) -> int:
        s = self.settings
        shards = len(s.hosts)
        staging = schema.TenantSchema(self.staging, retention_days=s.retention_days)
        self._drop_staging(client)  # a killed run's leftover
        self.log(restore_progress.shard_line(shard, host, ShardPhase.STAGING))
        self._command(client, shard, host, schema.create_database(staging))
        source = self._same_shard(manifest, shard)
        staged_natively = (
            None
            if source is None
            else self._restore_natively(manifest, source, shard, host, client)
        )
        if source is not None and staged_natively is not None:
            staged = staged_natively
            table = self.source_table(source)
            if staged != source.tables.get(table, 0):
                raise RestoreFailed(
                    f"backup {manifest.name} shard {source.shard}: {table} restored {staged} "
                    f"rows, the manifest counts {source.tables.get(table, 0)}: nothing restored"
                )
            self.log(f"shard {shard}: {staged} rows staged on {host} (the engine's RESTORE)")
            self.log(restore_progress.shard_line(shard, host, ShardPhase.STAGED, staged))
            return staged
        self._command(
            client,
            shard,
            host,
            schema.events_table(staging, name=self.table, engine="MergeTree"),
        )
        self._command(client, shard, host, f"SYSTEM STOP TTL MERGES {self._table(self.staging)}")
        columns = ", ".join(quote_identifier(n) for n, _ in EVENT_COLUMNS)
        keep = f" WHERE {schema.SHARDING_KEY} % {shards} = {shard}" if shards > 1 else ""
        for source in manifest.shard_backups:
            table = self.source_table(source)
            reader = f"{self.staging}_src"
            self._command(
                client, shard, host, f"DROP DATABASE IF EXISTS {quote_identifier(reader)}"
            )
            self._command(
                client,
                shard,
                host,
                f"CREATE DATABASE {quote_identifier(reader)} ENGINE = Backup("
                f"{sql_string(manifest.database)}, {self._s3(manifest, source)})",
            )
            try:
                source_table = f"{quote_identifier(reader)}.{quote_identifier(table)}"
                found = self._query(
                    client,
                    shard,
                    host,
                    f"SELECT count() AS n FROM {source_table}",  # noqa: S608
                )
                rows = int(found[0]["n"])
                if rows != source.tables.get(table, 0):
                    raise RestoreFailed(
                        f"backup {manifest.name} shard {source.shard}: {table} holds {rows} rows, "
                        f"the manifest counts {source.tables.get(table, 0)}: nothing restored"
                    )
                self._command(
                    client,
                    shard,
                    host,
                    f"INSERT INTO {self._table(self.staging)} ({columns}) "  # noqa: S608
                    f"SELECT {columns} FROM {source_table}{keep}",
                )
            finally:
                self._command(
                    client, shard, host, f"DROP DATABASE IF EXISTS {quote_identifier(reader)}"
                )
        staged = self._count(client, shard, host, self.staging)
        self.log(f"shard {shard}: {staged} rows staged on {host}")
        self.log(restore_progress.shard_line(shard, host, ShardPhase.STAGED, staged))
        return staged

    def _same_shard(self, manifest: backups.Manifest, shard: int) -> backups.ShardBackup | None:
        """The source shard whose rows are exactly this target shard's, when the engine's
        own RESTORE can bring them: as many shards as the source (shard k's rows stay on
        shard k, where the source had them) and no replicas in the source (a restored
        replicated table would join the Keeper path of the one it was taken from)."""
        if manifest.shards != len(self.settings.hosts) or manifest.replicas != 1:
            return None
        found = [sb for sb in manifest.shard_backups if sb.shard == shard]
        return found[0] if len(found) == 1 else None

    def _restore_natively(
        self,
        manifest: backups.Manifest,
        source: backups.ShardBackup,
        shard: int,
        host: str,
        client: ClickHouseClient,
    ) -> int | None:
        """The engine's RESTORE of one source shard's table into the staging database:
        files copied from S3 as they are, nothing decoded or sorted again. First the
        table alone (`structure_only`), so its TTL merges stop before any row arrives
        (an old backup's rows may be past the retention by now; they must be counted
        first) and so a table the target's cannot take parts from (another sorting key:
        an older schema version) is found before any data moves; None then, and the
        staging table is dropped again for the row-by-row copy. Otherwise the rows
        staged, counted once every restored part passes CHECK TABLE."""
        backed_up = (
            f"{quote_identifier(manifest.database)}.{quote_identifier(self.source_table(source))}"
        )
        staging = self._table(self.staging)
        restore = f"RESTORE TABLE {backed_up} AS {staging} FROM {self._s3(manifest, source)}"
        self._command(client, shard, host, f"{restore} SETTINGS structure_only = 1")
        if not self._parts_fit(client, shard, host):
            self._command(client, shard, host, f"DROP TABLE IF EXISTS {staging} SYNC")
            self.log(f"shard {shard}: the backup's table is not the target's; copying rows")
            return None
        self._command(client, shard, host, f"SYSTEM STOP TTL MERGES {staging}")
        self._command(client, shard, host, restore)
        # The files were copied, not decoded, and RESTORE verifies none of them: CHECK
        # TABLE hashes every file of every restored part and compares it with the
        # part's checksums (from the backup), so a corrupt data object fails here,
        # before the target changes, without decoding a column (about half the time of
        # reading every column back, bench/README.md).
        try:
            broken = client.check_table(staging)
        except ClickHouseError as err:
            raise RestoreFailed(f"shard {shard} on {host}: {first_line(str(err))}") from None
        if broken:
            raise RestoreFailed(
                f"shard {shard} on {host}: backup {manifest.name} shard {source.shard} is "
                f"corrupt ({first_line(broken[0])}): nothing restored"
            )
        return self._count(client, shard, host, self.staging)

    def _parts_fit(self, client: ClickHouseClient, shard: int, host: str) -> bool:
        """Whether staging's parts can be attached to the target table: the same
        columns, partition key and sorting key (what ATTACH PARTITION FROM requires)."""
        params = {"t": self.table, "a": self.staging, "b": self.settings.database}
        keys = self._query(
            client,
            shard,
            host,
            "SELECT database AS d, partition_key AS p, sorting_key AS k FROM system.tables "
            "WHERE name = {t:String} AND database IN ({a:String}, {b:String})",
            params,
        )
        columns = self._query(
            client,
            shard,
            host,
            "SELECT database AS d, name AS n, type AS y FROM system.columns "
            "WHERE table = {t:String} AND database IN ({a:String}, {b:String}) "
            "ORDER BY database, position",
            params,
        )
        shapes: dict[str, list[Any]] = {str(r["d"]): [r["p"], r["k"]] for r in keys}
        for column in columns:
            shapes.setdefault(str(column["d"]), []).append((column["n"], column["y"]))
        return len(shapes) == 2 and shapes[self.staging] == shapes[self.settings.database]

    def _s3(self, manifest: backups.Manifest, source: backups.ShardBackup) -> str:
        s = self.settings.s3
        url = f"{s.endpoint}/{self.store.bucket}/{self.store.root}{manifest.name}/{source.path}"
        return (
            f"S3({sql_string(url)}, {sql_string(s.access_key_id)}, "
            f"{sql_string(s.secret_access_key)})"
        )

    # -- 5. move ----------------------------------------------------------------------
    def _partitions(
        self, client: ClickHouseClient, shard: int, host: str, database: str
    ) -> set[str]:
        found = self._query(
            client,
            shard,
            host,
            "SELECT DISTINCT partition_id AS p FROM system.parts WHERE active AND rows > 0 "
            "AND database = {db:String} AND table = {t:String}",
            {"db": database, "t": self.table},
        )
        return {str(r["p"]) for r in found}

    def _move(self, shard: int, host: str, client: ClickHouseClient, *, rows: int) -> None:
        target = self._table(self.settings.database)
        # The target deduplicates at merge (schema.events_table): a backup holding an
        # event twice (parts not merged yet when it was taken) would count less than
        # staged after a merge. No merge runs between the move and the count.
        client.command(f"SYSTEM STOP MERGES {target}")
        try:
            found = self._move_partitions(shard, host, client, target)
        finally:
            client.command(f"SYSTEM START MERGES {target}")
        if found != rows:
            raise RestoreFailed(
                f"shard {shard} on {host}: {found} rows after the move, {rows} staged; "
                "restore again with overwrite"
            )
        self.log(f"shard {shard}: {rows} rows in place on {host}")
        self.log(restore_progress.shard_line(shard, host, ShardPhase.IN_PLACE, rows))

    def _move_partitions(self, shard: int, host: str, client: ClickHouseClient, target: str) -> int:
        """ATTACH (or REPLACE) every staged partition into `target`; its rows after."""
        staged = self._partitions(client, shard, host, self.staging)
        verb: Literal["ATTACH", "REPLACE"] = "REPLACE" if self.settings.overwrite else "ATTACH"
        try:
            for partition in sorted(staged):
                client.command(
                    f"ALTER TABLE {target} {verb} PARTITION ID {sql_string(partition)} "
                    f"FROM {self._table(self.staging)}"
                )
            if self.settings.overwrite:
                for partition in sorted(
                    self._partitions(client, shard, host, self.settings.database) - staged
                ):
                    client.command(
                        f"ALTER TABLE {target} DROP PARTITION ID {sql_string(partition)}"
                    )
        except ClickHouseError as err:
            raise RestoreFailed(
                f"shard {shard} on {host}: moving the staged rows into place failed part-way "
                f"({first_line(str(err))}); restore again with overwrite"
            ) from None
        return self._count(client, shard, host, self.settings.database)

    # -- helpers ----------------------------------------------------------------------
    def _drop_staging(self, client: ClickHouseClient) -> None:
        for database in (f"{self.staging}_src", self.staging):
            try:
                client.command(f"DROP DATABASE IF EXISTS {quote_identifier(database)} SYNC")
            except (ClickHouseError, OSError) as err:
                self.log(f"could not drop {database}: {first_line(str(err))}")

    def _command(self, client: ClickHouseClient, shard: int, host: str, sql: str) -> None:
        try:
            client.command(sql)
        except ClickHouseError as err:
            raise RestoreFailed(f"shard {shard} on {host}: {first_line(str(err))}") from None

    def _query(
        self,
        client: ClickHouseClient,
        shard: int,
        host: str,
        sql: str,
        params: Params | None = None,
    ) -> list[Row]:
        try:
            return list(client.query(sql, params or {}))
        except ClickHouseError as err:
            raise RestoreFailed(f"shard {shard} on {host}: {first_line(str(err))}") from None


def main(env: Mapping[str, str] | None = None) -> int:
    """Entry point of ``tenantry restore``: 0 when every row is in place, 1 when the
    restore failed, 2 when the environment is not usable."""
    return run_main("restore", RestoreSettings, lambda settings: Job(settings).run(), env)
