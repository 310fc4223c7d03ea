"""Who may submit usage, and the billing settings.

Usage comes from machines: the per-tenant ingestion service and the operator. They
send it to the internal listener (``POST /internal/v1/orgs/{org}/usage``) with one
internal service token (``TENANTRY_CP_INTERNAL_TOKEN``, checked by
``controlplane.internal.InternalService``), which then acts as ``billing:manage`` in the
organisation of the path and nothing else (`service_access`). Members holding
``billing:manage`` may submit usage too (corrections by an operator of the platform),
on the public ``POST /v1/orgs/{org}/usage`` through the ordinary ``OrgPermission``
path, so a member of another organisation still gets the 404 every org route gives;
the service token is not accepted there.

The settings live here rather than in ``controlplane.settings`` to keep billing
self-contained; they read the same ``TENANTRY_CP_`` environment prefix, and tests set
``app.state.billing_settings`` directly.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import Request
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from controlplane import db
from controlplane.billing import service
from controlplane.context import OrgAccess
from controlplane.deps import app_state


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TENANTRY_CP_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    internal_token: SecretStr | None = None
    """Bearer token of the ingestion service and the operator; unset disables it."""
    usage_grace_days: float = Field(default=3.0, ge=0, le=62)
    """How long after a period ends its late usage events are still accepted."""
    usage_max_future_seconds: int = Field(default=300, ge=0)
    """Clock skew tolerated on usage timestamps."""

    def policy(self) -> service.UsagePolicy:
        return service.UsagePolicy(
            grace=timedelta(days=self.usage_grace_days),
            max_future=timedelta(seconds=self.usage_max_future_seconds),
        )


def billing_settings(request: Request) -> BillingSettings:
    """The app's billing settings, read from the environment once per app."""
    found = getattr(request.app.state, "billing_settings", None)
    if not isinstance(found, BillingSettings):
        found = BillingSettings()
        request.app.state.billing_settings = found
    return found


async def service_access(request: Request, org_id: uuid.UUID) -> OrgAccess:
    """The internal service as ``billing:manage`` in the path's organisation (404 when it
    does not exist). Only after ``InternalService`` accepted the token."""
    async with db.connection(app_state(request).pool) as conn:
        org = await service.org_for_service(conn, org_id)
    request.state.audit_org = org_id
    return service.service_access(org)
