"""Alerts about tenants become notifications of the tenant's organisation.

Alertmanager posts its webhook (payload version 4) to the internal route with the
internal service token. An alert concerns a tenant when it has a ``tenant`` label (every
alert of the chart's tenants group has one: the Tenant resource's name). The
organisation is read from that Tenant resource's label, never from the alert: an alert
cannot put a notice into another organisation by naming it. An alert without a tenant,
naming a Tenant this control plane does not know, or whose ``namespace`` label is not
that tenant's, is counted as unmatched and dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from controlplane.context import OrgAccess
from controlplane.kube import CustomResources
from controlplane.notifications import repository
from controlplane.notifications.schemas import AlertNotificationOut
from tenantry import contract
from tenantry.internal_api import AlertmanagerAlert, AlertmanagerWebhook, AlertsResult

PAGE = 200


@dataclass(frozen=True)
class _Owner:
    org_id: uuid.UUID
    tenant: str  # the name the organisation gave it (the API's), not the resource's


async def _owner(crs: CustomResources, alert: AlertmanagerAlert) -> _Owner | None:
    resource = alert.labels.get("tenant")
    if not resource:
        return None
    namespace = alert.labels.get("namespace")
    if namespace is not None and namespace != contract.tenant_namespace(resource):
        return None
    obj = await crs.get(resource)
    if obj is None:
        return None
    org = obj.labels.get(contract.LABEL_ORG)
    try:
        org_id = uuid.UUID(org or "")
    except ValueError:
        return None
    return _Owner(org_id, obj.labels.get(contract.LABEL_NAME, obj.name))


async def receive(
    conn: asyncpg.Connection, crs: CustomResources, webhook: AlertmanagerWebhook
) -> AlertsResult:
    notified = 0
    for alert in webhook.alerts:
        owner = await _owner(crs, alert)
        if owner is None:
            continue
        notified += await repository.record(
            conn,
            org_id=owner.org_id,
            tenant=owner.tenant,
            alert=alert,
            ends_at=alert.ends_at if alert.ends_at and alert.ends_at.year > 1 else None,
        )
    received = len(webhook.alerts)
    return AlertsResult(received=received, notified=notified, unmatched=received - notified)


async def list_visible(conn: asyncpg.Connection, access: OrgAccess) -> list[AlertNotificationOut]:
    """The organisation's newest notifications about the tenants ``access`` may read."""
    rows = await repository.newest(conn, access.org.id, PAGE)
    return [
        AlertNotificationOut(**dict(r))
        for r in rows
        if access.allows("tenants:read", scope=("tenant", r["tenant"]))
    ]
