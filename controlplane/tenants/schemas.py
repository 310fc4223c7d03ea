"""Wire models of tenants. The spec is the CRD's own model, so the API accepts exactly
what the custom resource accepts (camelCase, unknown fields rejected)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tenantry.api.restore import BACKUP_NAME_PATTERN
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


class RestoreCreate(BaseModel):
    """A restore of one of the tenant's own backups into it (a ``Restore`` resource)."""

    model_config = ConfigDict(extra="forbid")

    backup: Annotated[str, Field(pattern=BACKUP_NAME_PATTERN)] = "latest"
    """latest (the newest complete backup) or a backup's name, e.g. 20261206T031500.123Z."""
    overwrite: bool = False
    """Replace the rows the tenant's tables hold; false: the restore fails if they hold any."""


class RestoreOut(BaseModel):
    name: str
    backup: str
    overwrite: bool
    status: dict[str, Any]
    """The operator's: phase (Pending, Running, Succeeded, Failed), message, startedAt,
    completedAt, conditions."""
    created: str | None
