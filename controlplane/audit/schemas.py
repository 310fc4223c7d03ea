"""Wire models of the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    ip: str
    user_agent: str
    request_id: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_after: int | None
    """Pass as ``after`` to read the next page; null at the end."""


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    problem: str
    broken_at: int | None
