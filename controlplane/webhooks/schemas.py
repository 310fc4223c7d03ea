"""Wire models of webhooks. The signing secret appears in exactly two responses:
creation and rotation; never in a list, a log, the audit trail or an error."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from controlplane.validation import PRINTABLE


class EventType(StrEnum):
    ALERT_FIRING = "alert.firing"
    ALERT_RESOLVED = "alert.resolved"
    WEBHOOK_DISABLED = "webhook.disabled"
    MEMBER_INVITED = "member.invited"
    MEMBER_REMOVED = "member.removed"
    INVOICE_FINALIZED = "invoice.finalized"
    USAGE_THRESHOLD = "usage.threshold"


Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=PRINTABLE)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    """``https://`` (``http://`` only when the control plane allows it, for local runs)."""
    event_types: Annotated[list[EventType], Field(max_length=16)] = []
    """The event types to send; empty: every type."""


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    secret_rotated_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str
    """``whsec_...``: the HMAC key of ``webhook-signature``; it is never shown again."""


class WebhookSecret(BaseModel):
    id: uuid.UUID
    secret: str
    """The new secret (the old one stops signing at once); never shown again."""


class AttemptOut(BaseModel):
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str


class DeliveryOut(BaseModel):
    id: int
    msg_id: str
    event_type: str
    state: str
    """pending, delivered or failed"""
    tries: int
    next_attempt_at: datetime | None
    """When a pending delivery is tried next; None once delivered or failed."""
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptOut]
    payload: dict[str, Any]
