"""Backup and restore as users run them, on real pods: the tenant's backup CronJob run by
Kubernetes' own CronJob controller in the cluster, the backup and restore Jobs in the
Tenantry image, ClickHouse's BACKUP and RESTORE run by the tenant's server pod against
the platform's S3 (SeaweedFS in a pod, tenantry_dev/platform.py), a `Restore` applied
with kubectl:

rows inserted → a scheduled backup that holds them, in the Tenant's status → the Tenant
deleted with reclaimPolicy Delete (its backups stay) → a new Tenant of another layout (2
shards, the backup's was 1) and a Restore of the deleted one's latest backup →
Succeeded, with each shard's progress and the Events read from the Job's log → the same
rows and checksum in the new tenant, each row on the shard its sharding key names
(counted on each ClickHouse pod: the stand-in reads no other shard).

Runs after tests/incluster/test_lifecycle.py (whose tenants are gone by then: the real
node's 2 CPUs are shared).
"""

from __future__ import annotations

from typing import Any

import pytest
from tenantry_operator.model import LABEL_COMPONENT

from tenantry import contract
from tenantry.api.restore import ShardPhase
from tenantry.clickhouse.client import quote_identifier
from tenantry.clickhouse.schema import EVENT_COLUMNS, EVENTS, EVENTS_LOCAL, SHARDING_KEY
from tests.incluster import platform
from tests.incluster.conftest import Platform
from tests.support.kube import Kube, resource, tenant
from tests.support.wait import eventually

pytestmark = [pytest.mark.incluster, pytest.mark.timeout(1200)]

ROWS = 5000
SOURCE = "vault"
TARGET = "vault-again"
BUCKET = "tenantry-incluster-backups"
SPEC: dict[str, Any] = {
    "plan": "starter",
    "clickhouse": {"resources": {"requests": {"cpu": "200m"}}},
    "backup": {"bucket": BUCKET, "schedule": "0 3 * * *"},
}


COLUMNS = ", ".join(quote_identifier(n) for n, _ in EVENT_COLUMNS)
TARGET_SHARDS = 2


def _table(name: str, table: str = EVENTS) -> str:
    return f"{quote_identifier(contract.tenant_database(name))}.{quote_identifier(table)}"


def _per_shard(kube: Kube, name: str) -> dict[int, tuple[int, int, int]]:
    """Each shard's (rows, checksum, rows on the wrong shard), read on its own pod."""
    namespace = contract.tenant_namespace(name)
    pods = kube.get("pods", "-n", namespace, "-l", f"{LABEL_COMPONENT}=clickhouse")["items"]
    out = {}
    for pod in pods:
        answer = platform.clickhouse(
            kube,
            namespace,
            f"SELECT toUInt32(getMacro('shard')), count(), sum(cityHash64({COLUMNS})), "  # noqa: S608
            f"countIf({SHARDING_KEY} % {TARGET_SHARDS} != toUInt64(getMacro('shard'))) "
            f"FROM {_table(name, EVENTS_LOCAL)}",
            pod=pod["metadata"]["name"],
        )
        shard, rows, checksum, misplaced = (int(v) for v in answer.split())
        out[shard] = (rows, checksum, misplaced)
    return out


def _events(kube: Kube, kind: str, name: str) -> dict[str, list[str]]:
    uid = kube.get(kind.lower(), name)["metadata"]["uid"]
    selector = f"involvedObject.kind={kind},involvedObject.name={name},involvedObject.uid={uid}"
    out: dict[str, list[str]] = {}
    for e in kube.get("events", "-A", "--field-selector", selector)["items"]:
        out.setdefault(e["reason"], []).append(e["message"])
    return out


def test_a_scheduled_backup_restores_into_a_new_tenant_after_the_first_is_deleted(
    installed: Platform,
) -> None:
    kube = installed.kube
    every_minute = {**SPEC, "reclaimPolicy": "Delete"}
    every_minute["backup"] = {**SPEC["backup"], "schedule": "* * * * *"}
    kube.apply(tenant(SOURCE, every_minute))
    platform.wait_tenant(kube, SOURCE)
    platform.clickhouse(
        kube,
        contract.tenant_namespace(SOURCE),
        f"INSERT INTO {_table(SOURCE)} (event_id, timestamp, event, user_id, properties) "  # noqa: S608
        "SELECT generateUUIDv4(), now64(3) - number * 60, ['click', 'view'][number % 2 + 1], "
        f"toString(number % 97), toString(number) FROM numbers({ROWS})",
    )
    rows, checksum = (
        int(v)
        for v in platform.clickhouse(
            kube,
            contract.tenant_namespace(SOURCE),
            f"SELECT count(), sum(cityHash64({COLUMNS})) FROM {_table(SOURCE)}",  # noqa: S608
        ).split()
    )
    assert rows == ROWS

    # The CronJob controller runs the backup (within the minute); the operator reads the
    # result from S3 into the Tenant's status.
    backup = eventually(
        lambda: platform.tenant_status(kube, SOURCE).get("backup") or {},
        accept=lambda b: b.get("rows") == ROWS,
        timeout=300,
        what=f"a backup of tenant {SOURCE} holding its {ROWS} rows",
    )
    assert backup["count"] >= 1
    assert (backup["shards"], backup["replicas"]) == (1, 1)
    assert backup.get("lastError") is None

    kube.run("delete", "tenant", SOURCE, "--timeout=300s", timeout=360)

    two_shards = {**SPEC, "clickhouse": {**SPEC["clickhouse"], "shards": TARGET_SHARDS}}
    kube.apply(tenant(TARGET, two_shards))
    kube.apply(resource("Restore", TARGET, {"tenant": TARGET, "source": {"tenant": SOURCE}}))
    status = eventually(
        lambda: (kube.get_or_none("restore", TARGET) or {}).get("status") or {},
        accept=lambda s: s.get("phase") in ("Succeeded", "Failed"),
        timeout=600,
        what=f"Restore {TARGET} ended",
    )
    assert status["phase"] == "Succeeded", status.get("message")
    assert status["rows"] == ROWS
    assert status["backup"] >= backup["lastBackup"]  # latest: that one or a newer one
    assert status["progress"] == f"{TARGET_SHARDS}/{TARGET_SHARDS} shards in place"
    assert status["message"].endswith(f"completed: {ROWS} rows in place")
    placed = _per_shard(kube, TARGET)
    assert sorted(placed) == list(range(TARGET_SHARDS))
    assert [(s["shard"], s["phase"], s["rows"]) for s in status["shards"]] == [
        (k, ShardPhase.IN_PLACE, placed[k][0]) for k in range(TARGET_SHARDS)
    ]
    assert all(rows > 0 for rows, _, _ in placed.values())  # both shards got rows
    assert sum(rows for rows, _, _ in placed.values()) == ROWS
    assert sum(c for _, c, _ in placed.values()) % 2**64 == checksum  # sum() wraps at 2^64
    assert [misplaced for _, _, misplaced in placed.values()] == [0] * TARGET_SHARDS
    events = _events(kube, "Restore", TARGET)
    assert sorted(events["ShardInPlace"]) == sorted(
        f"shard {s['shard']}: {s['rows']} rows in place on {s['host']}" for s in status["shards"]
    )
    assert "RestoreSucceeded" in events
    kube.run("delete", "restore", TARGET, timeout=120)
    kube.run("delete", "tenant", TARGET, "--timeout=300s", timeout=360)
