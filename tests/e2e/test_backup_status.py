"""``status.backup`` and ``BackupHealthy``: the operator against the real API server and
a real S3 (SeaweedFS).

kwok runs no containers, so the CronJob's Jobs never run here (the job itself is tested
in tests/integration/operator/test_backup_job.py). What a finished run leaves behind is
made as it would be: the backup's objects and its manifest written with the job's own
code (``backups.Store``), and the CronJob's ``status.lastSuccessfulTime`` that the
CronJob controller sets when a Job of it completes; a failed run is the Warning Event
the Job controller records (``BackoffLimitExceeded``) and the Job's pod as the kubelet
leaves it, terminated with the job's one line as its termination message
(``tests.support.pods``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

from tenantry_operator import backups

from tests.e2e.test_tenant_lifecycle import condition, events, status, wait_phase
from tests.support import pods
from tests.support.kube import Kube
from tests.support.seaweed import S3Server
from tests.support.wait import eventually

BUCKET = "status-backups"


def _rfc3339(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _complete_backup(s3: S3Server, tenant: str, at: dt.datetime) -> backups.Manifest:
    store = backups.Store(
        s3.config,
        bucket=BUCKET,
        prefix="",
        tenant=tenant,
    )
    name = backups.new_name(at)
    shard = backups.ShardBackup(
        shard=0, host="ch-s0-r0", path="shard-0/", rows=42, bytes=4096, files=1
    )
    raw = s3.client()
    raw.put_object(Bucket=BUCKET, Key=f"{store.root}{name}/shard-0/.backup", Body=b"<b/>")
    manifest = backups.Manifest(
        name=name,
        tenant=tenant,
        database=f"t_{tenant.replace('-', '_')}",
        started=at,
        finished=at + dt.timedelta(seconds=3),
        shards=1,
        replicas=1,
        schema_version=1,
        engine_version="26.9.2.1",
        shard_backups=[shard],
    )
    store.write_manifest(manifest)
    return manifest


def _job_succeeded(kube: Kube, ns: str, at: dt.datetime) -> None:
    patch = {"status": {"lastSuccessfulTime": _rfc3339(at), "lastScheduleTime": _rfc3339(at)}}
    pods.patch_status(kube, "cronjob", "backup", ns, patch)


def _job_failed(kube: Kube, ns: str, at: dt.datetime) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"backup-29000000.{int(at.timestamp())}", "namespace": ns},
        "involvedObject": {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "backup-29000000",
            "namespace": ns,
        },
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
        "type": "Warning",
        "firstTimestamp": _rfc3339(at),
        "lastTimestamp": _rfc3339(at),
        "count": 1,
        "source": {"component": "job-controller"},
    }
    kube.run("create", "-f", "-", stdin=json.dumps(event))


def _failed_job_pod(kube: Kube, ns: str, job: str, message: str) -> None:
    """The pod of Job ``job`` as the kubelet leaves it when the job exits 1 having
    printed ``message`` (``terminationMessagePolicy: FallbackToLogsOnError``)."""
    pods.create_unscheduled(kube, ns, f"{job}-x7k2q", labels={"job-name": job}, container="backup")
    terminated = {"exitCode": 1, "reason": "Error", "message": message}
    status = {
        "phase": "Failed",
        "containerStatuses": [
            {
                "name": "backup",
                "image": "tenantry:test",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }
    pods.patch_status(kube, "pod", f"{job}-x7k2q", ns, {"status": status})


def _writes_nothing_when_idle(kube: Kube, name: str, ns: str, *, poke: str) -> None:
    """Nothing new: a reconcile (woken by an edit of the CronJob's metadata, which the
    operator does not own) leaves the Tenant as it is."""
    before = kube.get("tenant", name)["metadata"]["resourceVersion"]
    kube.run("annotate", "--overwrite", "cronjob", "backup", "-n", ns, f"example.com/poke={poke}")
    time.sleep(5)
    assert kube.get("tenant", name)["metadata"]["resourceVersion"] == before


def test_backup_status_follows_the_backups(
    crds: Kube, make_tenant: Any, s3_server: S3Server
) -> None:
    name = make_tenant("bk-status", {"backup": {"bucket": BUCKET, "retention": 3}})
    ns = f"tenant-{name}"
    wait_phase(crds, name, "Ready")
    assert status(crds, name)["backup"] == {"count": 0}
    healthy = condition(crds, name, "BackupHealthy")
    assert (healthy["status"], healthy["reason"]) == ("Unknown", "NoBackupYet")

    # A run completes: its backup is in S3 and the CronJob records the success.
    finished = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    manifest = _complete_backup(s3_server, name, finished - dt.timedelta(seconds=5))
    _job_succeeded(crds, ns, finished)
    backup = eventually(
        lambda: status(crds, name).get("backup", {}),
        accept=lambda b: b.get("count") == 1,
        timeout=30,
        what="status.backup after a backup",
    )
    assert backup == {
        "count": 1,
        "lastBackup": manifest.name,
        "lastSuccessTime": _rfc3339(manifest.finished),
        "sizeBytes": 4096,
        "rows": 42,
        "shards": 1,
        "replicas": 1,
        "schemaVersion": 1,
        "observedJobSuccess": _rfc3339(finished),
    }
    healthy = condition(crds, name, "BackupHealthy")
    assert (healthy["status"], healthy["reason"]) == ("True", "BackupSucceeded")
    completed = eventually(
        lambda: [e for e in events(crds, name) if e["reason"] == "BackupCompleted"],
        accept=bool,
        timeout=30,
        what="a BackupCompleted event",
    )
    assert completed[0]["type"] == "Normal"
    assert completed[0]["message"].startswith(f"backup {manifest.name}: 42 rows, 4096 bytes")

    _writes_nothing_when_idle(crds, name, ns, poke="1")

    # A run fails: the condition, the error and a Warning event say so, with the job's
    # own line. That line holds the admin password and the S3 secret (a job whose own
    # redaction missed them): neither may reach the status or the event.
    password = base64.b64decode(
        crds.get("secret", "clickhouse-credentials", "-n", ns)["data"]["admin-password"]
    ).decode()
    secret = s3_server.secret_access_key
    line = (
        f"backup failed: shard 0 on ch-s0-r0: S3 said no to key {secret} "
        f"at http://admin:{password}@ch-s0-r0:8123/"
    )
    _failed_job_pod(crds, ns, "backup-29000000", f"connecting to ch-s0-r0\n{line}\n")
    _job_failed(crds, ns, dt.datetime.now(dt.UTC))
    healthy = eventually(
        lambda: condition(crds, name, "BackupHealthy"),
        accept=lambda c: c.get("status") == "False",
        timeout=30,
        what="BackupHealthy False after a failed Job",
    )
    assert healthy["reason"] == "BackupFailed"
    assert "BackoffLimitExceeded" in healthy["message"]
    said = "backup failed: shard 0 on ch-s0-r0: S3 said no to key *** at http://admin:***@ch-s0-r0"
    assert said in healthy["message"]
    backup = status(crds, name)["backup"]
    assert "BackoffLimitExceeded" in backup["lastError"]
    assert said in backup["lastError"]
    assert backup["count"] == 1  # the backups kept are still there
    degraded = condition(crds, name, "Degraded")
    assert degraded["reason"] == "BackupFailed"
    assert said in degraded["message"]
    warnings = [e for e in events(crds, name) if e["type"] == "Warning"]
    failed = [e for e in warnings if e["reason"] == "BackupFailed"]
    assert failed
    assert all(said in e["message"] for e in failed)
    shown = json.dumps([crds.get("tenant", name), warnings])
    assert secret not in shown
    assert password not in shown

    # A later success clears it.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    _complete_backup(s3_server, name, later - dt.timedelta(seconds=1))
    _job_succeeded(crds, ns, later)
    healthy = eventually(
        lambda: condition(crds, name, "BackupHealthy"),
        accept=lambda c: c.get("status") == "True",
        timeout=30,
        what="BackupHealthy True after a later success",
    )
    backup = status(crds, name)["backup"]
    assert backup["count"] == 2
    assert "lastError" not in backup  # removed from the stored status, not just unset
    _writes_nothing_when_idle(crds, name, ns, poke="2")
