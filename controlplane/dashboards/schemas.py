"""Wire models of dashboards. ``spec.tenantRef.name`` is the tenant's name inside the
organisation; the service maps it to and from the Tenant resource name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from controlplane.tenants.schemas import Name
from tenantry.api.dashboard import DashboardSpec


class DashboardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    spec: DashboardSpec


class DashboardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: DashboardSpec


class DashboardOut(BaseModel):
    name: str
    resource_name: str
    tenant: str
    spec: dict[str, Any]
    status: dict[str, Any]
    generation: int | None
    created: str | None
