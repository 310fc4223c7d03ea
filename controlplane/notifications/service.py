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
from datetime import datetime
from typing import Any

import asyncpg

from controlplane.context import OrgAccess
from controlplane.kube import CustomResources
from controlplane.notifications import repository
from controlplane.notifications.schemas import AlertNotificationOut
from controlplane.webhooks import service as webhooks
from controlplane.webhooks.schemas import EventType
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


def _one_line(text: str, limit: int) -> str:
    """Text fit for a mail header: control characters and newlines folded to spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:limit]


async def enqueue_emails(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, subject: str, lines: list[str]
) -> int:
    """Queue an e-mail of a notification to each owner of the organisation, in the
    caller's transaction (``notification_emails``, sent by the background sender,
    ``notifications/worker.py``)."""
    return await repository.enqueue_emails(
        conn,
        org_id=org_id,
        subject=_one_line(f"[Tenantry] {subject}", 200),
        body="\n".join(lines)[:20_000] + "\n",
    )


async def receive(
    conn: asyncpg.Connection,
    crs: CustomResources,
    webhook: AlertmanagerWebhook,
    *,
    email: bool = False,
) -> AlertsResult:
    """Record the alerts; each new occurrence or change of status is queued for the
    organisation's webhooks and, with ``email`` (an SMTP server is configured), e-mailed
    to its owners."""
    notified = 0
    for alert in webhook.alerts:
        owner = await _owner(crs, alert)
        if owner is None:
            continue
        ends_at = alert.ends_at if alert.ends_at and alert.ends_at.year > 1 else None
        recorded = await repository.record(
            conn, org_id=owner.org_id, tenant=owner.tenant, alert=alert, ends_at=ends_at
        )
        if recorded is None:
            continue
        notified += 1
        if recorded.previous != alert.status:  # new, or firing -> resolved (and back)
            await webhooks.enqueue(
                conn,
                org_id=owner.org_id,
                event_type=f"alert.{alert.status}",
                data={
                    "id": recorded.id,
                    "tenant": owner.tenant,
                    "alertname": alert.labels.get("alertname", ""),
                    "severity": alert.labels.get("severity", ""),
                    "status": alert.status,
                    "summary": alert.annotations.get("summary", ""),
                    "description": alert.annotations.get("description", ""),
                    "starts_at": alert.starts_at.isoformat(),
                    "ends_at": ends_at.isoformat() if ends_at else None,
                },
            )
            if email:
                summary = alert.annotations.get("summary", "") or alert.labels.get("alertname", "")
                await enqueue_emails(
                    conn,
                    org_id=owner.org_id,
                    subject=f"{alert.status.upper()}: {summary}",
                    lines=[
                        summary,
                        "",
                        f"Tenant: {owner.tenant}",
                        f"Alert: {alert.labels.get('alertname', '')} "
                        f"({alert.labels.get('severity', '')}), {alert.status}",
                        f"Since: {alert.starts_at.isoformat()}",
                        *([f"Ended: {ends_at.isoformat()}"] if ends_at else []),
                        "",
                        alert.annotations.get("description", ""),
                    ],
                )
    received = len(webhook.alerts)
    return AlertsResult(received=received, notified=notified, unmatched=received - notified)


async def webhook_disabled(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    webhook_id: uuid.UUID,
    host: str,
    reason: str,
    email: bool = False,
) -> None:
    """Tell the organisation that its webhook was disabled: a notice (no tenant), a
    ``webhook.disabled`` event to its other webhooks and, with ``email``, an e-mail to
    its owners."""
    summary = f"Webhook to {host} disabled after failed deliveries"
    notice = await repository.record_notice(
        conn,
        org_id=org_id,
        name="WebhookDisabled",
        summary=summary,
        description=f"{reason}; re-enable it with POST /v1/orgs/{org_id}/webhooks/"
        f"{webhook_id}/enable",
        key=f"webhook-disabled-{webhook_id}-{uuid.uuid4().hex}",
    )
    await webhooks.enqueue(
        conn,
        org_id=org_id,
        event_type="webhook.disabled",
        data={"id": notice, "webhook_id": str(webhook_id), "host": host, "summary": summary},
    )
    if email:
        await enqueue_emails(
            conn,
            org_id=org_id,
            subject=summary,
            lines=[
                summary,
                "",
                f"{reason}.",
                f"Re-enable it with POST /v1/orgs/{org_id}/webhooks/{webhook_id}/enable.",
            ],
        )


@dataclass(frozen=True)
class OrgEvent:
    """Something that happened to an organisation that its people want to hear of."""

    type: EventType
    name: str  # the notice's name, e.g. "MemberInvited"
    summary: str  # one line, no secret, no token
    data: dict[str, Any]  # the webhook event's data (with the notice's id added)
    once: tuple[str, datetime] | None = None
    """(key, instant): only the first event with this key and instant is told
    (usage thresholds: once per period)."""


async def org_event(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, event: OrgEvent, email: bool = False
) -> int | None:
    """Tell the organisation, in the caller's transaction: a notice its members see
    (no tenant), the event to its webhooks that take the type and, with ``email``, an
    e-mail to its owners. The notice's id, or None when ``once`` had been told."""
    if event.once is None:
        notice: int | None = await repository.record_notice(
            conn,
            org_id=org_id,
            name=event.name,
            summary=event.summary,
            description="",
            key=f"{event.type.value}-{uuid.uuid4().hex}",
        )
    else:
        key, at = event.once
        notice = await repository.record_notice_once(
            conn,
            org_id=org_id,
            name=event.name,
            summary=event.summary,
            description="",
            key=key,
            at=at,
        )
    if notice is None:
        return None
    await webhooks.enqueue(
        conn, org_id=org_id, event_type=event.type.value, data={"id": notice, **event.data}
    )
    if email:
        await enqueue_emails(conn, org_id=org_id, subject=event.summary, lines=[event.summary])
    return notice


async def list_visible(conn: asyncpg.Connection, access: OrgAccess) -> list[AlertNotificationOut]:
    """The organisation's newest notifications about the tenants ``access`` may read,
    and its notices about the organisation itself (no tenant: a disabled webhook) for
    members who may read every tenant."""
    rows = await repository.newest(conn, access.org.id, PAGE)
    return [
        AlertNotificationOut(**dict(r))
        for r in rows
        if access.allows("tenants:read", scope=("tenant", r["tenant"]) if r["tenant"] else None)
    ]
