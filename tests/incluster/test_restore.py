"""Backup and restore as users run them, on real pods: the tenant's backup CronJob run by
Kubernetes' own CronJob controller in the cluster, the backup and restore Jobs in the
Tenantry image, ClickHouse's BACKUP and RESTORE run by the tenant's server pod against
the platform's S3 (SeaweedFS in a pod, tenantry_dev/platform.py), a `Restore` applied
with kubectl:

rows inserted → a scheduled backup that holds them, in the Tenant's status → the Tenant
deleted with reclaimPolicy Delete (its backups stay) → a new Tenant and a Restore of the
deleted one's latest backup → Succeeded, with each shard's progress and the Events read
from the Job's log → the same rows and checksum in the new tenant.

Runs after tests/incluster/test_lifecycle.py (whose tenants are gone by then: the real
node's 2 CPUs are shared).
"""

from __future__ import annotations

from typing import Any

import pytest

from tenantry import contract
from tenantry.api.restore import ShardPhase
from tenantry.clickhouse.client import quote_identifier
from tenantry.clickhouse.schema import EVENT_COLUMNS, EVENTS
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


def _table(name: str) -> str:
    return f"{quote_identifier(contract.tenant_database(name))}.{quote_identifier(EVENTS)}"


def _rows_and_checksum(kube: Kube, name: str) -> str:
    columns = ", ".join(quote_identifier(n) for n, _ in EVENT_COLUMNS)
    return platform.clickhouse(
        kube,
        contract.tenant_namespace(name),
        f"SELECT count(), sum(cityHash64({columns})) FROM {_table(name)}",  # noqa: S608
    )


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
    before = _rows_and_checksum(kube, SOURCE)
    assert before.split()[0] == str(ROWS)

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

    kube.apply(tenant(TARGET, SPEC))
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
    [shard] = status["shards"]
    assert (shard["shard"], shard["phase"], shard["rows"]) == (0, ShardPhase.IN_PLACE, ROWS)
    assert status["progress"] == "1/1 shards in place"
    assert status["message"].endswith(f"completed: {ROWS} rows in place")
    events = _events(kube, "Restore", TARGET)
    assert events["ShardInPlace"] == [f"shard 0: {ROWS} rows in place on {shard['host']}"]
    assert "RestoreSucceeded" in events

    assert _rows_and_checksum(kube, TARGET) == before
    kube.run("delete", "restore", TARGET, timeout=120)
    kube.run("delete", "tenant", TARGET, "--timeout=300s", timeout=360)
