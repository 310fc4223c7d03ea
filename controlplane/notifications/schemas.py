"""Wire models of notifications."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AlertNotificationOut(BaseModel):
    id: int
    tenant: str
    alertname: str
    severity: str
    status: str
    """firing, or resolved"""
    summary: str
    description: str
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    updated_at: datetime
