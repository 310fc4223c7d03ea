"""Rules of webhooks: creation with a URL the SSRF policy accepts, a signing secret shown
once (creation, rotation), the audit trail of every change, and the outbox: ``enqueue``
is called by the path that records an organisation's notification, in its transaction.

The audit trail names a webhook by id and host, never by its full URL (a URL may carry
a token in its path or query) and never with its secret.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from controlplane.audit import service as audit
from controlplane.auth import crypto
from controlplane.context import OrgAccess, RequestInfo
from controlplane.errors import Conflict, InvalidInput, NotFound
from controlplane.webhooks import repository, signing, targets
from controlplane.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookSecret,
)

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest body sent; larger data is cut down to its identifiers (``truncated``)."""
MAX_WEBHOOKS_PER_ORG = 20
DELIVERIES_PAGE = 100


def _out(row: Any) -> WebhookOut:
    return WebhookOut(**dict(row))


def _target(webhook_id: uuid.UUID, url: str) -> str:
    """The audit target of a webhook: by id and host, never the full URL."""
    return f"webhook/{webhook_id}@{urlsplit(url).hostname or ''}"


async def create(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    body: WebhookCreate,
    policy: targets.Policy,
    seal_key: str | None,
    info: RequestInfo,
) -> WebhookCreated:
    try:
        await targets.resolve(body.url, policy)
    except targets.TargetRefused as exc:
        raise InvalidInput(f"url: {exc}") from None
    if len(await repository.of_org(conn, access.org.id)) >= MAX_WEBHOOKS_PER_ORG:
        raise Conflict(f"an organisation has at most {MAX_WEBHOOKS_PER_ORG} webhooks")
    secret = signing.new_secret()
    row = await repository.insert(
        conn,
        org_id=access.org.id,
        url=body.url,
        event_types=sorted({t.value for t in body.event_types}),
        sealed_secret=crypto.seal(secret, seal_key),
        created_by=access.principal.user_id,
    )
    detail = {"event_types": list(row["event_types"])}
    await audit.record_as(
        conn,
        access,
        action="webhook.create",
        target=_target(row["id"], body.url),
        info=info,
        detail=detail,
    )
    return WebhookCreated(**_out(row).model_dump(), secret=secret)


async def list_webhooks(conn: asyncpg.Connection, access: OrgAccess) -> list[WebhookOut]:
    return [_out(r) for r in await repository.of_org(conn, access.org.id)]


async def delete(
    conn: asyncpg.Connection, access: OrgAccess, *, webhook_id: uuid.UUID, info: RequestInfo
) -> WebhookOut:
    row = await repository.delete(conn, access.org.id, webhook_id)
    if row is None:
        raise NotFound("webhook not found")
    await audit.record_as(
        conn, access, action="webhook.delete", target=_target(webhook_id, row["url"]), info=info
    )
    return _out(row)


async def rotate_secret(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    webhook_id: uuid.UUID,
    seal_key: str | None,
    info: RequestInfo,
) -> WebhookSecret:
    secret = signing.new_secret()
    row = await repository.set_secret(
        conn, access.org.id, webhook_id, crypto.seal(secret, seal_key)
    )
    if row is None:
        raise NotFound("webhook not found")
    await audit.record_as(
        conn,
        access,
        action="webhook.rotate_secret",
        target=_target(webhook_id, row["url"]),
        info=info,
    )
    return WebhookSecret(id=webhook_id, secret=secret)


async def enable(
    conn: asyncpg.Connection, access: OrgAccess, *, webhook_id: uuid.UUID, info: RequestInfo
) -> WebhookOut:
    row = await repository.enable(conn, access.org.id, webhook_id)
    if row is None:
        raise NotFound("webhook not found")
    await audit.record_as(
        conn, access, action="webhook.enable", target=_target(webhook_id, row["url"]), info=info
    )
    return _out(row)


async def list_deliveries(
    conn: asyncpg.Connection, access: OrgAccess, *, webhook_id: uuid.UUID
) -> list[DeliveryOut]:
    if await repository.get(conn, access.org.id, webhook_id) is None:
        raise NotFound("webhook not found")
    rows = await repository.deliveries(conn, access.org.id, webhook_id, DELIVERIES_PAGE)
    return [
        DeliveryOut(
            id=r["id"],
            msg_id=r["msg_id"],
            event_type=r["event_type"],
            state=r["state"],
            tries=r["tries"],
            next_attempt_at=r["next_attempt_at"] if r["state"] == "pending" else None,
            created_at=r["created_at"],
            delivered_at=r["delivered_at"],
            attempts=[AttemptOut(**a) for a in json.loads(r["attempts"])],
            payload=json.loads(r["body"]),
        )
        for r in rows
    ]


async def redeliver(
    conn: asyncpg.Connection,
    access: OrgAccess,
    *,
    webhook_id: uuid.UUID,
    delivery_id: int,
    info: RequestInfo,
) -> None:
    hook = await repository.get(conn, access.org.id, webhook_id)
    if hook is None:
        raise NotFound("webhook not found")
    if not hook["enabled"]:
        raise Conflict("the webhook is disabled; enable it first (POST .../enable)")
    row = await repository.redeliver(conn, access.org.id, webhook_id, delivery_id)
    if row is None:
        raise NotFound("delivery not found")
    detail = {"delivery": str(delivery_id), "msg_id": row["msg_id"]}
    await audit.record_as(
        conn,
        access,
        action="webhook.redeliver",
        target=_target(webhook_id, hook["url"]),
        info=info,
        detail=detail,
    )


def payload(event_type: str, data: dict[str, Any], *, at: datetime | None = None) -> str:
    """The JSON body of an event (Standard Webhooks: ``type``, ``timestamp``, ``data``),
    at most ``MAX_PAYLOAD_BYTES``: larger data keeps only its ``id`` and ``truncated``."""
    stamp = (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    body = json.dumps(
        {"type": event_type, "timestamp": stamp, "data": data},
        separators=(",", ":"),
        default=str,
    )
    if len(body.encode()) > MAX_PAYLOAD_BYTES:
        cut = {"id": data.get("id"), "truncated": True}
        body = json.dumps({"type": event_type, "timestamp": stamp, "data": cut}, default=str)
    return body


async def enqueue(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> int:
    """Queue the event for every enabled webhook of the organisation that takes its
    type, in the caller's transaction; returns the number of deliveries queued."""
    return await repository.enqueue(
        conn, org_id=org_id, event_type=event_type, body=payload(event_type, data)
    )
