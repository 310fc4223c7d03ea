"""Wire models of tenants. The spec is the CRD's own model, so the API accepts exactly
what the custom resource accepts (camelCase, unknown fields rejected)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tenantry.api.tenant import TenantSpec

# CR names are "<slug>-<name>" and at most 50 characters; slugs take at most 20.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, Field(min_length=1, max_length=29, pattern=NAME_PATTERN)]


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    spec: TenantSpec = Field(default_factory=TenantSpec)


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: TenantSpec


class TenantOut(BaseModel):
    name: str
    resource_name: str
    spec: dict[str, Any]
    status: dict[str, Any]
    generation: int | None
    created: str | None
