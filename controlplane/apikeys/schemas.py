"""Wire models of API keys. The secret appears in exactly one response: creation.

The introspection payloads (what ingestion pods ask) are internal-API payloads, defined
once in ``tenantry.internal_api``."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from controlplane.validation import PRINTABLE


class KeyScope(StrEnum):
    EVENTS_WRITE = "events:write"
    QUERIES_READ = "queries:read"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=PRINTABLE)]
    scopes: Annotated[list[KeyScope], Field(min_length=1, max_length=8)] = [KeyScope.EVENTS_WRITE]
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str
    """The secret; it is never shown again."""
