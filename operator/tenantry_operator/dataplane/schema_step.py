"""Schema provisioning on each ClickHouse host, and when to skip it.

`tenantry.clickhouse.layout.provision` does the work on one host (database, the
layout's tables, a conversion when the host holds another layout's, TTL drift fixed
in place); the operator runs it on every host through that host's own Service, never
ON CLUSTER (README, "Where the schema's DDL runs"), in a worker thread (the client
blocks), and reports per host what changed, for the Tenant's status and Events.

`hosts_to_provision` decides, from the Tenant's status and the hosts' pods alone,
which hosts need it: none on a periodic reconcile of a tenant whose recorded schema
(database, retention, shards x replicas, hosts) matches and whose Ready pods all
carry the schema label, so an idle tenant costs no ClickHouse call and no write. A
new host, a host whose pod was re-created (a new pod carries no label), a layout or
retention change: those hosts are provisioned, then their pods labelled, and only
then does the `clickhouse` Service send them traffic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.clickhouse import layout, schema
from tenantry.clickhouse.client import ClickHouseClient
from tenantry_operator.builders import clickhouse
from tenantry_operator.dataplane.connect import database_name
from tenantry_operator.model import TenantModel

STATUS_KEY = "schema"


def tenant_schema(model: TenantModel) -> schema.TenantSchema:
    """The plain values the schema SQL depends on, from the normalised model."""
    ch = model.clickhouse
    clustered = ch.clustered
    return schema.TenantSchema(
        database=database_name(model),
        retention_days=model.retention_days,
        cluster=model.cluster_name if clustered else None,
        shards=ch.shards if clustered else 1,
        replicas=ch.replicas if clustered else 1,
    )


@dataclass(frozen=True)
class HostPod:
    """What the schema step needs of a ClickHouse host's pod."""

    ready: bool
    labelled: bool  # carries SCHEMA_LABEL=SCHEMA_READY


def pod_info(pod: Mapping[str, Any]) -> HostPod:
    """The readiness and schema label of a pod object."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    return HostPod(
        ready=ready and not deleting,
        labelled=labels.get(clickhouse.SCHEMA_LABEL) == clickhouse.SCHEMA_READY,
    )


def pod_name(host: str) -> str:
    """The one pod of a host's StatefulSet."""
    return f"{host}-0"


@dataclass(frozen=True)
class SchemaResult:
    """What `ensure_schema` did on the hosts it ran on."""

    database: str
    retention_days: int
    shards: int
    replicas: int
    created: bool
    ttl_altered: bool
    previous_ttl_days: int | None
    hosts: list[str] = field(default_factory=list)
    converted: bool = False
    moved_partitions: int = 0

    @property
    def changed(self) -> bool:
        return self.created or self.ttl_altered or self.converted

    @property
    def summary(self) -> str:
        """ "created", "converted", "ttl altered" or "unchanged"."""
        if self.created:
            return "created"
        if self.converted:
            return "converted"
        return "ttl altered" if self.ttl_altered else "unchanged"

    def status(self) -> dict[str, Any]:
        """The value for the Tenant's `status.schema`."""
        return {
            "database": self.database,
            "retentionDays": self.retention_days,
            "shards": self.shards,
            "replicas": self.replicas,
            "hosts": list(self.hosts),
        }

    def notices(self) -> list[tuple[str, str]]:
        """(reason, message) pairs worth a Kubernetes Event; none when unchanged."""
        on = f" on {', '.join(self.hosts)}" if self.hosts else ""
        if self.created:
            return [
                (
                    "SchemaCreated",
                    f"created database {self.database} with events table "
                    f"(retention {self.retention_days} days){on}",
                )
            ]
        if self.converted:
            return [
                (
                    "LayoutConverted",
                    f"converted {self.database} to {self.shards} shard(s) x "
                    f"{self.replicas} replica(s){on}, {self.moved_partitions} partition(s) "
                    "moved into events_local",
                )
            ]
        if self.ttl_altered:
            return [
                (
                    "RetentionChanged",
                    f"events retention {self.previous_ttl_days} -> {self.retention_days} days",
                )
            ]
        return []


def _provision(client: ClickHouseClient, wanted: schema.TenantSchema, host: str) -> SchemaResult:
    report = layout.provision(client, wanted)
    return SchemaResult(
        database=wanted.database,
        retention_days=wanted.retention_days,
        shards=wanted.shards,
        replicas=wanted.replicas,
        created=report.created,
        ttl_altered=report.ttl_altered,
        previous_ttl_days=report.previous_ttl_days,
        hosts=[host],
        converted=report.converted,
        moved_partitions=report.moved_partitions,
    )


async def ensure_schema(
    client: ClickHouseClient,
    model: TenantModel,
    *,
    host: str | None = None,
    wanted: schema.TenantSchema | None = None,
) -> SchemaResult:
    """Provision the host `client` talks to (idempotent); raises ClickHouseError (or
    layout.LayoutError) on failure.

    `host`: its name (default the first host, ch-s0-r0); `wanted`: the schema, by
    default the model's (`tenant_schema`). `client` is a plain client on that host (no
    current database needed: every statement names the database).
    """
    name = host or model.clickhouse.hosts[0].name
    return await asyncio.to_thread(_provision, client, wanted or tenant_schema(model), name)


def _same_schema(recorded: Mapping[str, Any], wanted: schema.TenantSchema) -> bool:
    return (
        recorded.get("database") == wanted.database
        and recorded.get("retentionDays") == wanted.retention_days
        and recorded.get("shards") == wanted.shards
        and recorded.get("replicas") == wanted.replicas
    )


def provisioned_hosts(status: Mapping[str, Any] | None, wanted: schema.TenantSchema) -> list[str]:
    """The hosts `status.schema` records as carrying `wanted` (none when it records
    another database, retention or layout)."""
    recorded = (status or {}).get(STATUS_KEY)
    if not isinstance(recorded, Mapping) or not _same_schema(recorded, wanted):
        return []
    return [str(h) for h in recorded.get("hosts") or []]


def hosts_to_provision(
    status: Mapping[str, Any] | None,
    model: TenantModel,
    pods: Mapping[str, HostPod],
    *,
    wanted: schema.TenantSchema | None = None,
) -> list[str]:
    """The hosts to provision now, ch-s0-r0 first (the one a 1 x 1 tenant's rows are
    on): those whose pod is Ready and either not recorded as carrying the wanted
    schema or not labelled (a new pod). `pods` is keyed by pod name; a host whose pod
    is missing or not Ready waits (its pod's changes wake the worker)."""
    done = set(provisioned_hosts(status, wanted or tenant_schema(model)))
    todo = []
    for host in model.clickhouse.hosts:
        pod = pods.get(pod_name(host.name))
        if pod is None or not pod.ready:
            continue
        if host.name not in done or not pod.labelled:
            todo.append(host.name)
    return todo
