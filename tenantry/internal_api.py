"""The payloads of the control plane's internal API, defined once.

The operator and the ingestion pods call the control plane with the internal service
token (``tenantry.internal_client``); the control plane serves these routes with the
same models (``controlplane/billing``, ``controlplane/apikeys``), on the control plane's
internal listener only (``PREFIX``; never its public port, which answers them 404):

| route | request | answer |
|---|---|---|
| ``POST /internal/v1/orgs/{org}/usage`` | ``UsageBatch`` | ``UsageResult`` |
| ``GET /internal/v1/orgs/{org}/limits`` | | ``OrgLimitsOut`` |
| ``POST /internal/v1/apikeys/introspect`` | ``IntrospectRequest`` | ``Introspection`` |
| ``POST /internal/v1/alerts`` (Alertmanager) | ``AlertmanagerWebhook`` | ``AlertsResult`` |

Before, each client wrote its body as a raw dict and parsed the answer by hand, so a
renamed field on one side would only have shown up in production. The route paths are
here too. Like ``tenantry.contract``, this module imports nothing of the project.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

TENANT_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces: keys are identifiers
MAX_BATCH = 5_000


PREFIX = "/internal/"
"""Every internal route's path starts so: the control plane serves them on its internal
listener only."""


def usage_path(org_id: str) -> str:
    """Usage submission (billing) by the ingestion pods and the operator."""
    return f"{PREFIX}v1/orgs/{org_id}/usage"


def limits_path(org_id: str) -> str:
    """The plan limits a Tenant CR of the organisation must fit."""
    return f"{PREFIX}v1/orgs/{org_id}/limits"


INTROSPECT_PATH = f"{PREFIX}v1/apikeys/introspect"


class Metric(StrEnum):
    EVENTS_INGESTED = "events_ingested"
    BYTES_INGESTED = "bytes_ingested"
    STORAGE_BYTES = "storage_bytes"
    CLICKHOUSE_HOST_HOURS = "clickhouse_host_hours"
    DASHBOARD_QUERIES = "dashboard_queries"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UsageEvent(_Strict):
    metric: Metric
    tenant: Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=TENANT_PATTERN)]
    quantity: Annotated[int, Field(ge=0, le=2**53)]
    """In the metric's unit; ignored by count metrics (dashboard_queries)."""
    timestamp: AwareDatetime
    idempotency_key: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=KEY_PATTERN)
    ]


class UsageBatch(_Strict):
    events: Annotated[list[UsageEvent], Field(min_length=1, max_length=MAX_BATCH)]


class UsageRejected(BaseModel):
    index: int
    idempotency_key: str
    reason: str


class UsageResult(BaseModel):
    received: int
    accepted: int
    """New events stored by this request."""
    duplicates: int
    """Events whose idempotency key was already stored (counted once, earlier)."""
    rejected: list[UsageRejected]
    """Events outside the accepted window (closed period, too late, in the future)."""


class LimitsOut(BaseModel):
    max_tenants: int
    max_shards: int
    max_replicas: int
    max_dashboards: int
    tenant_plans: list[str]
    retention_days: int
    events_per_month: int


class OrgLimitsOut(BaseModel):
    """An organisation's plan and its limits (``GET /internal/v1/orgs/{org_id}/limits``)."""

    plan: str
    limits: LimitsOut


class IntrospectRequest(_Strict):
    """What an ingestion pod sends: the key its client presented."""

    key: Annotated[str, StringConstraints(max_length=200)]


class Introspection(BaseModel):
    """What a presented API key is. ``tenant`` is the Tenant CR name (``<org slug>-<name>``):
    what the ingestion pod knows as TENANTRY_TENANT. ``active`` is false for every unusable
    key (unknown, revoked, expired), with the other fields empty."""

    active: bool
    tenant: str = ""
    org_id: str = ""
    scopes: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None


ALERTS_PATH = "/internal/v1/alerts"
"""Alertmanager's webhook receiver (``webhook_configs``, payload version 4): the alerts
that name a tenant become notifications of the tenant's organisation."""
MAX_ALERTS = 1_000


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook; fields Alertmanager adds later are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Annotated[str, StringConstraints(pattern=r"^(firing|resolved)$")]
    labels: dict[
        Annotated[str, StringConstraints(max_length=200)],
        Annotated[str, StringConstraints(max_length=1000)],
    ]
    annotations: dict[
        Annotated[str, StringConstraints(max_length=200)],
        Annotated[str, StringConstraints(max_length=4000)],
    ] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(None, alias="endsAt")
    """Alertmanager sends 0001-01-01T00:00:00Z (year 1: no end) while an alert fires."""
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=KEY_PATTERN)]


class AlertmanagerWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Annotated[str, StringConstraints(pattern=r"^4$")]
    alerts: Annotated[list[AlertmanagerAlert], Field(max_length=MAX_ALERTS)]


class AlertsResult(BaseModel):
    received: int
    notified: int
    """Alerts recorded (new or updated) as a notification of the tenant's organisation."""
    unmatched: int
    """Alerts without a tenant label, or naming no Tenant this control plane knows."""
