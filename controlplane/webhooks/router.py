"""HTTP routes of webhooks: /v1/orgs/{org_id}/webhooks (``webhooks:read`` to list them
and their deliveries, ``webhooks:manage`` to change them)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from controlplane.context import OrgAccess
from controlplane.deps import Conn, Info, State
from controlplane.rbac.dependencies import OrgPermission
from controlplane.settings import Settings
from controlplane.webhooks import service, targets
from controlplane.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookSecret,
)

router = APIRouter(prefix="/v1/orgs/{org_id}/webhooks", tags=["webhooks"])
Read = Annotated[OrgAccess, Depends(OrgPermission("webhooks:read"))]
Manage = Annotated[OrgAccess, Depends(OrgPermission("webhooks:manage"))]


def _seal_key(settings: Settings) -> str | None:
    key = settings.signing_key_secret
    return key.get_secret_value() if key is not None else None


def _policy(settings: Settings) -> targets.Policy:
    return targets.Policy(
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private_targets,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    access: Manage, body: WebhookCreate, conn: Conn, state: State, info: Info
) -> WebhookCreated:
    """A webhook; the response carries its signing secret, which is never shown again."""
    return await service.create(
        conn,
        access,
        body=body,
        policy=_policy(state.settings),
        seal_key=_seal_key(state.settings),
        info=info,
    )


@router.get("")
async def list_webhooks(access: Read, conn: Conn) -> list[WebhookOut]:
    return await service.list_webhooks(conn, access)


@router.delete("/{webhook_id}")
async def delete_webhook(
    access: Manage, webhook_id: uuid.UUID, conn: Conn, info: Info
) -> WebhookOut:
    return await service.delete(conn, access, webhook_id=webhook_id, info=info)


@router.post("/{webhook_id}/rotate-secret")
async def rotate_webhook_secret(
    access: Manage, webhook_id: uuid.UUID, conn: Conn, state: State, info: Info
) -> WebhookSecret:
    """A new signing secret (shown once); the old one signs nothing from now on."""
    return await service.rotate_secret(
        conn, access, webhook_id=webhook_id, seal_key=_seal_key(state.settings), info=info
    )


@router.post("/{webhook_id}/enable")
async def enable_webhook(
    access: Manage, webhook_id: uuid.UUID, conn: Conn, info: Info
) -> WebhookOut:
    """Enable a webhook disabled after failed deliveries; its pending deliveries resume."""
    return await service.enable(conn, access, webhook_id=webhook_id, info=info)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(access: Read, webhook_id: uuid.UUID, conn: Conn) -> list[DeliveryOut]:
    """The newest deliveries, each with its attempts (status, timing) and next attempt."""
    return await service.list_deliveries(conn, access, webhook_id=webhook_id)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver(
    access: Manage, webhook_id: uuid.UUID, delivery_id: int, conn: Conn, info: Info
) -> None:
    """Send a delivery again (same ``webhook-id``), with a fresh round of retries."""
    await service.redeliver(conn, access, webhook_id=webhook_id, delivery_id=delivery_id, info=info)
