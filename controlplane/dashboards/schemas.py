"""Wire models of dashboards. ``spec.tenantRef.name`` is the tenant's name inside the
organisation; the service maps it to and from the Tenant resource name."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from controlplane.dashboards import params
from controlplane.tenants.schemas import Name
from tenantry.api.dashboard import DashboardSpec


def _usable_time_range(spec: DashboardSpec) -> DashboardSpec:
    """The CRD's pattern admits a 30 February or year 2200; refuse what no panel query
    could run with (ValueError: a 422 naming ``timeRange.from`` or ``timeRange.to``)."""
    try:
        params.check_time_range(spec.time_range, dt.datetime.now(dt.UTC))
    except params.BadRequest as err:
        raise ValueError(str(err)) from None
    return spec


Spec = Annotated[DashboardSpec, AfterValidator(_usable_time_range)]


class DashboardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    spec: Spec


class DashboardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: Spec


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
