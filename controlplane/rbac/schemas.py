"""Wire models of roles."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controlplane.validation import Description

GrantText = Annotated[str, Field(min_length=1, max_length=120)]


class RolePut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Description = ""
    permissions: Annotated[list[GrantText], Field(min_length=1, max_length=100)]


class RoleOut(BaseModel):
    name: str
    builtin: bool
    description: str
    permissions: list[str]
