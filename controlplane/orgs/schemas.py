"""Wire models of organisations, members and billing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from controlplane.auth.schemas import Email
from controlplane.validation import Name

# No '-' in slugs: CR names are "<slug>-<name>", so the first '-' separates them and two
# organisations can never produce the same CR name.
SLUG_PATTERN = r"^[a-z][a-z0-9]{1,19}$"
ROLE_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrgCreate(Strict):
    slug: Annotated[str, Field(pattern=SLUG_PATTERN)]
    name: Name


class OrgUpdate(Strict):
    name: Name


class OrgOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    plan: str
    role: str
    created_at: datetime


class MemberAdd(Strict):
    email: Email
    role: Annotated[str, Field(pattern=ROLE_PATTERN)]


class MemberUpdate(Strict):
    role: Annotated[str, Field(pattern=ROLE_PATTERN)]


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    created_at: datetime


class BillingOut(BaseModel):
    plan: str
    max_tenants: int
    max_dashboards: int
    max_shards: int
    tenant_plans: list[str]


class InvitationCreate(Strict):
    email: Email
    role: Annotated[str, Field(pattern=ROLE_PATTERN)]
    expires_in_days: Annotated[int, Field(ge=1, le=30)] = 7


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationOut):
    token: str
    """The invitation's secret, shown this once. With SMTP configured the invitee got it
    by e-mail (``email_sent``); otherwise, or when sending failed, hand it on yourself."""
    email_sent: bool = False
    """True when the invitation e-mail was handed to the SMTP server."""
    email_delivery: Literal["sent", "failed", "not_configured"] = "not_configured"
    """Why ``email_sent`` is what it is; a failed delivery leaves the invitation valid."""


class InvitationAccept(Strict):
    token: Annotated[str, Field(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]
