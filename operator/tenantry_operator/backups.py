"""A tenant's backups in S3: their layout, the manifest that makes one complete, which
ones retention keeps (pure), and listing, reading and deleting them (boto3).

Layout, under the tenant's key prefix ``<prefix><tenant>/`` in the backup bucket::

    <name>/shard-<n>/...     what ClickHouse's BACKUP wrote for shard n (its own format)
    <name>/manifest.json     written by the backup job last, after every shard succeeded

A backup without its manifest is incomplete (running, or failed half-way) and is never
restored from nor counted. The name is the job's start time in UTC
(``20261206T031500.123Z``): names sort like times, so "newest" needs no object read.

The backup job (``backup_job``) writes backups and enforces retention; the operator
reads the newest manifest and the count for ``status.backup`` (``summary``), and
deletes everything at finalize (``s3.Buckets``). The restore (``restore_job``) reads the manifest
to know the layout, schema version and row counts it must reproduce
(docs/backup-restore.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tenantry_operator import s3
from tenantry_operator.conditions import Cond

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_NAME_FORMAT = "%Y%m%dT%H%M%S"


def new_name(now: dt.datetime) -> str:
    """The name of a backup started at ``now``: UTC, to the millisecond, sortable."""
    utc = now.astimezone(dt.UTC)
    return f"{utc.strftime(_NAME_FORMAT)}.{utc.microsecond // 1000:03d}Z"


def shard_dir(shard: int) -> str:
    return f"shard-{shard}"


class ShardBackup(BaseModel):
    """What one shard's BACKUP produced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shard: int
    host: str  # the replica it was taken from
    path: str  # key prefix of the shard's backup, relative to the backup's own prefix
    rows: int  # rows the backup holds, all tables (read from the backup by the engine)
    tables: dict[str, int] = Field(default_factory=dict)  # rows per table
    bytes: int  # bytes the backup holds (system.backups.total_size)
    files: int  # files in the backup (system.backups.num_files)


class Manifest(BaseModel):
    """Written last; its presence makes a backup complete. Everything a restore must
    know without opening the shards' backups."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = MANIFEST_FORMAT
    name: str
    tenant: str
    database: str
    started: dt.datetime
    finished: dt.datetime
    shards: int  # the layout the backup was taken from
    replicas: int
    schema_version: int  # tenantry.clickhouse.schema.SCHEMA_VERSION of the data
    engine_version: str  # ClickHouse's version() on the hosts backed up
    shard_backups: list[ShardBackup] = Field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shard_backups)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shard_backups)


@dataclass(frozen=True)
class Inventory:
    """The backups found under a tenant's prefix, by name, each sorted oldest first."""

    complete: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def newest(self) -> str | None:
        return self.complete[-1] if self.complete else None


def inventory(keys: Iterable[str], *, root: str) -> Inventory:
    """Group object keys under ``root`` (the tenant's prefix) into backups (pure)."""
    names: set[str] = set()
    complete: set[str] = set()
    for key in keys:
        rest = key[len(root) :] if key.startswith(root) else ""
        name, sep, tail = rest.partition("/")
        if not sep or not name:
            continue
        names.add(name)
        if tail == MANIFEST:
            complete.add(name)
    return Inventory(sorted(complete), sorted(names - complete))


def expired(found: Inventory, *, keep: int) -> list[str]:
    """The backups retention deletes (pure): complete ones beyond the ``keep`` newest,
    and incomplete ones older than the newest complete one (a failed run's leftovers;
    a newer incomplete one may be a run in progress and is left alone)."""
    if keep < 1:
        raise ValueError("retention keeps at least one backup")
    old = found.complete[:-keep] if len(found.complete) > keep else []
    newest = found.newest
    leftovers = [n for n in found.incomplete if newest is not None and n < newest]
    return sorted(old + leftovers)


_DENIED = ": the access key or secret is wrong, or may not use this bucket"
_HINTS = {
    "403": _DENIED,
    "AccessDenied": _DENIED,
    "InvalidAccessKeyId": _DENIED,
    "SignatureDoesNotMatch": _DENIED,
    "404": ": no such bucket",
    "NoSuchBucket": ": no such bucket",
}


class Store:
    """One tenant's backups in one bucket. Blocking (boto3): call from a thread in
    async code. Raises ``s3.S3Error`` with a message safe to show (no secrets)."""

    def __init__(
        self, config: s3.S3Config, *, bucket: str, prefix: str, tenant: str, timeout: float = 10.0
    ) -> None:
        self._client: Any = s3.client(config, timeout=timeout)
        self.bucket = bucket
        self.root = s3.tenant_prefix(prefix, tenant)

    def url(self, name: str, shard: int) -> str:
        """Where shard ``shard`` of backup ``name`` goes, as a path in the bucket."""
        return f"{self.bucket}/{self.root}{name}/{shard_dir(shard)}/"

    def check(self) -> None:
        """The bucket exists and these credentials may use it."""
        self._call("checking bucket", self._client.head_bucket, Bucket=self.bucket)
        self._call(
            "listing bucket",
            self._client.list_objects_v2,
            Bucket=self.bucket,
            Prefix=self.root,
            MaxKeys=1,
        )

    def keys(self, name: str | None = None) -> list[str]:
        """Every object key of the tenant's backups (of backup ``name`` only, if given)."""
        prefix = self.root if name is None else f"{self.root}{name}/"

        def pages() -> list[str]:
            paginator = self._client.get_paginator("list_objects_v2")
            return [
                o["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for o in page.get("Contents", [])
            ]

        found: list[str] = self._call("listing backups", pages)
        return found

    def inventory(self) -> Inventory:
        return inventory(self.keys(), root=self.root)

    def read_manifest(self, name: str) -> Manifest:
        body = self._call(
            f"reading manifest of {name}",
            lambda: self._client.get_object(Bucket=self.bucket, Key=self._manifest_key(name))[
                "Body"
            ].read(),
        )
        return Manifest.model_validate_json(body)

    def write_manifest(self, manifest: Manifest) -> None:
        self._call(
            f"writing manifest of {manifest.name}",
            self._client.put_object,
            Bucket=self.bucket,
            Key=self._manifest_key(manifest.name),
            Body=json.dumps(manifest.model_dump(mode="json"), indent=2).encode(),
            ContentType="application/json",
        )

    def delete(self, name: str) -> int:
        """Delete backup ``name``, its manifest first (so that it is never seen complete
        but partial); returns the number of objects deleted."""
        keys = self.keys(name)
        manifest = self._manifest_key(name)
        ordered = [k for k in keys if k == manifest] + [k for k in keys if k != manifest]
        for start in range(0, len(ordered), 1000):
            batch = [{"Key": k} for k in ordered[start : start + 1000]]
            self._call(
                f"deleting backup {name}",
                self._client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )
        return len(ordered)

    def _manifest_key(self, name: str) -> str:
        return f"{self.root}{name}/{MANIFEST}"

    def _call(self, what: str, fn: Any, /, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as err:
            code = s3.code(err)
            hint = _HINTS.get(code, "")
            raise s3.S3Error(
                f"{what}: S3 refused it in bucket {self.bucket} ({code}{hint})"
            ) from None
        except BotoCoreError as err:
            raise s3.S3Error(f"{what}: S3 unreachable ({type(err).__name__})") from None


def summary(found: Inventory, newest: Manifest | None) -> dict[str, Any]:
    """``status.backup``'s view of S3 (pure): the newest complete backup and the count."""
    out: dict[str, Any] = {"count": len(found.complete)}
    if newest is not None:
        out.update(
            {
                "lastBackup": newest.name,
                "lastSuccessTime": newest.finished.astimezone(dt.UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "sizeBytes": newest.bytes,
                "rows": newest.rows,
                "shards": newest.shards,
                "replicas": newest.replicas,
                "schemaVersion": newest.schema_version,
            }
        )
    return out


# -- status.backup and the BackupHealthy condition (operator) ---------------------------
HEALTHY = "BackupHealthy"


def needs_read(previous: Mapping[str, Any] | None, job_success: str | None) -> bool:
    """Whether S3 must be read for ``status.backup``: never read yet, or the CronJob
    recorded a success since the last read. An idle tenant reads nothing."""
    return previous is None or previous.get("observedJobSuccess") != job_success


def job_success(cronjob: Mapping[str, Any] | None) -> str | None:
    """The backup CronJob's ``status.lastSuccessfulTime``, if any."""
    value = ((cronjob or {}).get("status") or {}).get("lastSuccessfulTime")
    return str(value) if value else None


def status(
    *,
    read: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
    job_success: str | None,
    failure: str | None,
) -> dict[str, Any]:
    """``status.backup`` (pure): what S3 says (``read``: a ``summary``, or None when S3
    was not read this time, then ``previous`` stands), plus the last Job failure. Unset
    values are left out: the API server drops nulls, and a status that differs from
    what is stored only by them would be written on every reconcile."""
    base = dict(read) if read is not None else dict(previous or {"count": 0})
    if read is not None:
        base["observedJobSuccess"] = job_success
    base["lastError"] = failure
    return {k: v for k, v in base.items() if v is not None}


def new_backup(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str | None:
    """The message of a ``BackupCompleted`` event when ``after`` names a newer backup
    than ``before`` (pure); None otherwise."""
    name = after.get("lastBackup")
    if not name or name == (before or {}).get("lastBackup"):
        return None
    return (
        f"backup {name}: {after.get('rows', 0)} rows, {after.get('sizeBytes', 0)} bytes, "
        f"{after.get('shards')} shard(s) x {after.get('replicas')} replica(s); "
        f"{after.get('count')} complete backup(s) kept"
    )


def condition(
    backup: Mapping[str, Any], *, configured: bool, failure: str | None, unreadable: str | None
) -> Cond:
    """``BackupHealthy`` (pure): False when the latest Job failed or backups cannot run,
    Unknown while S3 cannot be read or before the first backup, else True."""
    if not configured:
        return Cond(HEALTHY, False, "BackupNotConfigured", "the operator has no S3 endpoint")
    if failure:
        return Cond(HEALTHY, False, "BackupFailed", failure)
    if unreadable:
        return Cond(HEALTHY, None, "BackupsUnreadable", unreadable)
    if not backup.get("count"):
        return Cond(HEALTHY, None, "NoBackupYet", "no complete backup in S3 yet")
    return Cond(
        HEALTHY,
        True,
        "BackupSucceeded",
        f"{backup['count']} complete backup(s) kept; newest {backup.get('lastBackup')}",
    )


async def read_summary(
    config: s3.S3Config, *, bucket: str, prefix: str, tenant: str
) -> dict[str, Any]:
    """``summary`` of the tenant's backups, read from S3 in a thread (raises
    ``s3.S3Error``)."""

    def read() -> dict[str, Any]:
        store = Store(config, bucket=bucket, prefix=prefix, tenant=tenant, timeout=5.0)
        found = store.inventory()
        newest = store.read_manifest(found.newest) if found.newest else None
        return summary(found, newest)

    return await asyncio.to_thread(read)
