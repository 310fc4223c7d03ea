"""Wire models of the users domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from controlplane.validation import Name


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
