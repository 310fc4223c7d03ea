"""Schema provisioning for a tenant whose ClickHouse is Ready, and when to skip it.

`tenantry.clickhouse.schema.provision` does the work (database, events table,
Distributed table on clusters, TTL drift fixed in place); this step feeds it the
tenant's model, runs it in a worker thread (the client blocks) and reports what
changed and which hosts carry the schema, for the Tenant's status.

`needs_schema` decides from that status alone whether to run at all: a tenant
whose recorded schema matches its spec (database, retention, shards x replicas)
costs no ClickHouse call on a periodic reconcile. A scale-up changes shards or
replicas, so provisioning runs again and reaches the new hosts; a retention
change runs it again and the TTL is altered in place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.clickhouse import schema
from tenantry.clickhouse.client import ClickHouseClient
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
class SchemaResult:
    """What `ensure_schema` did and saw."""

    database: str
    retention_days: int
    shards: int
    replicas: int
    created: bool
    ttl_altered: bool
    previous_ttl_days: int | None
    hosts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.created or self.ttl_altered

    @property
    def summary(self) -> str:
        """ "created", "ttl altered" or "unchanged"."""
        if self.created:
            return "created"
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
        if self.created:
            return [
                (
                    "SchemaCreated",
                    f"created database {self.database} with events table "
                    f"(retention {self.retention_days} days)",
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


def _provision(client: ClickHouseClient, wanted: schema.TenantSchema) -> SchemaResult:
    report = schema.provision(client, wanted)
    hosts = schema.hosts_with_schema(client, wanted)
    return SchemaResult(
        database=wanted.database,
        retention_days=wanted.retention_days,
        shards=wanted.shards,
        replicas=wanted.replicas,
        created=report.created,
        ttl_altered=report.ttl_altered,
        previous_ttl_days=report.previous_ttl_days,
        hosts=hosts,
    )


async def ensure_schema(client: ClickHouseClient, model: TenantModel) -> SchemaResult:
    """Provision the tenant's schema (idempotent); raises ClickHouseError on failure.

    `client` is a plain client on the tenant's ClickHouse (no current database
    needed: every statement names the database).
    """
    return await asyncio.to_thread(_provision, client, tenant_schema(model))


def needs_schema(status: Mapping[str, Any] | None, model: TenantModel) -> bool:
    """Whether provisioning must run, judged from the Tenant's status alone.

    True when it never ran, or the database, retention, shard or replica count
    recorded in `status.schema` differ from what the model wants, or when no host
    was recorded as carrying the schema.
    """
    recorded = (status or {}).get(STATUS_KEY)
    if not isinstance(recorded, Mapping):
        return True
    wanted = tenant_schema(model)
    return (
        recorded.get("database") != wanted.database
        or recorded.get("retentionDays") != wanted.retention_days
        or recorded.get("shards") != wanted.shards
        or recorded.get("replicas") != wanted.replicas
        or not recorded.get("hosts")
    )
