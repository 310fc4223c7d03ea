"""Wire models of dashboards. ``spec.tenantRef.name`` is the tenant's name inside the
organisation; the service maps it to and from the Tenant resource name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


class Column(BaseModel):
    name: str
    type: str


class PanelData(BaseModel):
    """One panel's result. ``rows`` are lists in column order; times are RFC 3339
    text, 64-bit and decimal numbers may arrive as text (JSON numbers are doubles)."""

    model_config = ConfigDict(populate_by_name=True)

    columns: list[Column]
    rows: list[list[Any]]
    cached: bool
    generated_at: str = Field(alias="generatedAt")
