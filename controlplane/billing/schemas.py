"""Wire models of billing: plans, subscriptions, usage batches and invoices.

The usage batch and the organisation's limits are internal-API payloads the operator
and the ingestion pods send or read too: they are defined once in
``tenantry.internal_api`` and re-exported here.

Every amount is an integer of minor units next to its currency: JSON numbers are
exact for integers, and nobody has to guess whether 49.9 means euros or cents.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from controlplane.orgs.plans import OrgPlan
from tenantry.internal_api import LimitsOut


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TierOut(BaseModel):
    up_to: int | None
    unit_amount: int
    flat_amount: int


class PriceOut(BaseModel):
    metric: str
    model: str
    """flat, per_unit, graduated or volume."""
    unit: str
    unit_size: int
    amount: int | None = None
    unit_amount: int | None = None
    tiers: list[TierOut] = []


class PlanOut(BaseModel):
    key: str
    name: str
    currency: str
    base_fee: int
    prices: list[PriceOut]
    limits: LimitsOut


class SubscriptionStart(Strict):
    plan: OrgPlan


class SubscriptionChange(Strict):
    plan: OrgPlan


class SegmentOut(BaseModel):
    plan: str
    valid_from: datetime
    valid_to: datetime | None


class SubscriptionOut(BaseModel):
    plan: str | None
    """The plan in effect now (None once the subscription has ended)."""
    status: str
    """active, canceling (ends at ``cancel_at``) or ended."""
    currency: str
    started_at: datetime
    cancel_at: datetime | None
    current_period_start: datetime
    current_period_end: datetime
    segments: list[SegmentOut]


class MetricUsage(BaseModel):
    metric: str
    aggregation: str
    unit: str
    quantity: int
    by_tenant: dict[str, int]


class UsageOut(BaseModel):
    period: str
    period_start: datetime
    period_end: datetime
    metrics: list[MetricUsage]
    plan: str
    """The organisation's plan now (what tenant limits are checked against)."""
    events_per_month: int
    """The plan's monthly event allowance; ingestion services may throttle past it."""
    events_over_limit: bool


class LineOut(BaseModel):
    kind: str
    description: str
    plan: str
    metric: str | None
    quantity: int
    unit_amount: int
    unit_size: int
    tier: int | None
    amount: int
    starts: str
    ends: str


class InvoiceOut(BaseModel):
    id: uuid.UUID | None
    """None for the upcoming-invoice preview, which is not stored."""
    number: str | None
    status: str
    """preview, draft or finalized."""
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    total: int
    lines: list[LineOut]
    created_at: datetime | None
    finalized_at: datetime | None

    @classmethod
    def of_lines(cls, lines: list[dict[str, Any]], **fields: Any) -> InvoiceOut:
        return cls(lines=[LineOut(**line) for line in lines], **fields)
