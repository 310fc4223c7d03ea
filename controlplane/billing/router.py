"""HTTP routes of billing: /v1/orgs/{org_id}/billing/... and /v1/orgs/{org_id}/usage,
and the internal routes /internal/v1/orgs/{org_id}/usage and .../limits.

Reads need ``billing:read``; every change needs ``billing:manage``, usage submitted by a
member too. The internal routes (internal listener, internal service token only) take
the ingestion pods' and the operator's usage, and give the operator the plan limits it
checks Tenant CRs against.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from controlplane.billing import service
from controlplane.billing.access import billing_settings, service_access
from controlplane.billing.schemas import (
    InvoiceOut,
    PlanOut,
    SubscriptionChange,
    SubscriptionOut,
    SubscriptionStart,
    UsageOut,
)
from controlplane.bodylimit import LARGE_BODY
from controlplane.context import OrgAccess
from controlplane.deps import Conn, Info, State
from controlplane.internal import InternalService
from controlplane.rbac.dependencies import OrgPermission
from tenantry import internal_api
from tenantry.internal_api import OrgLimitsOut, UsageBatch, UsageResult

router = APIRouter(prefix="/v1/orgs/{org_id}", tags=["billing"])
internal_router = APIRouter(tags=["internal"])

Reader = Annotated[OrgAccess, Depends(OrgPermission("billing:read"))]
Manager = Annotated[OrgAccess, Depends(OrgPermission("billing:manage"))]

PeriodPath = Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$")]


def _now() -> datetime:
    return datetime.now(UTC)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a model with its ``$defs`` inlined (OpenAPI has no ``$defs``)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return dict(walk(schema))


async def _usage_batch(request: Request) -> UsageBatch:
    """The batch, validated by pydantic straight from the JSON bytes.

    A declared body parameter would have FastAPI decode the JSON into Python objects
    first and validate those, twice the work on the hot path of metering.
    """
    try:
        return UsageBatch.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


_BATCH_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline(UsageBatch.model_json_schema())}},
    }
}


Batch = Annotated[UsageBatch, Depends(_usage_batch)]


@router.post("/usage", openapi_extra={**_BATCH_SCHEMA, **LARGE_BODY})
async def submit_usage(access: Manager, body: Batch, conn: Conn, request: Request) -> UsageResult:
    """Usage a member with ``billing:manage`` submits (corrections)."""
    policy = billing_settings(request).policy()
    return await service.ingest(conn, access, batch=body, policy=policy, now=_now())


@internal_router.post(
    internal_api.usage_path("{org_id}"),
    openapi_extra={**_BATCH_SCHEMA, **LARGE_BODY},
    dependencies=[Depends(InternalService("internal:usage.submit"))],
)
async def submit_service_usage(
    access: Annotated[OrgAccess, Depends(service_access)],
    body: Batch,
    conn: Conn,
    request: Request,
) -> UsageResult:
    """Usage the ingestion pods and the operator measured."""
    policy = billing_settings(request).policy()
    return await service.ingest(conn, access, batch=body, policy=policy, now=_now())


@router.get("/billing/plans")
async def list_plans(_access: Reader) -> list[PlanOut]:
    return service.plans()


@router.get("/billing/subscription")
async def get_subscription(access: Reader, conn: Conn) -> SubscriptionOut:
    return await service.subscription(conn, access, now=_now())


@router.post("/billing/subscription", status_code=status.HTTP_201_CREATED)
async def start_subscription(
    access: Manager, body: SubscriptionStart, conn: Conn, info: Info
) -> SubscriptionOut:
    return await service.start(conn, access, body=body, info=info, now=_now())


@router.patch("/billing/subscription")
async def change_subscription_plan(
    access: Manager, body: SubscriptionChange, conn: Conn, info: Info
) -> SubscriptionOut:
    return await service.change_plan(conn, access, body=body, info=info, now=_now())


@router.post("/billing/subscription/cancel")
async def cancel_subscription(access: Manager, conn: Conn, info: Info) -> SubscriptionOut:
    return await service.cancel(conn, access, info=info, now=_now())


@router.get("/billing/usage")
async def get_usage(
    access: Reader,
    conn: Conn,
    period: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")] = None,
) -> UsageOut:
    return await service.usage(conn, access, period=period, now=_now())


@router.get("/billing/invoices/upcoming")
async def upcoming_invoice(access: Reader, conn: Conn) -> InvoiceOut:
    return await service.upcoming(conn, access, now=_now())


@router.get("/billing/invoices")
async def list_invoices(access: Reader, conn: Conn) -> list[InvoiceOut]:
    return await service.list_invoices(conn, access)


@router.get("/billing/invoices/{invoice_id}")
async def get_invoice(access: Reader, invoice_id: uuid.UUID, conn: Conn) -> InvoiceOut:
    return await service.get_invoice(conn, access, invoice_id=invoice_id)


@router.post("/billing/periods/{period}/close")
async def close_period(access: Manager, period: PeriodPath, conn: Conn, info: Info) -> InvoiceOut:
    return await service.close_period(conn, access, period_key=period, info=info, now=_now())


@router.post("/billing/invoices/{invoice_id}/finalize")
async def finalize_invoice(
    access: Manager, invoice_id: uuid.UUID, conn: Conn, state: State, info: Info
) -> InvoiceOut:
    return await service.finalize(
        conn, access, invoice_id=invoice_id, info=info, email=state.mailer is not None
    )


@internal_router.get(
    internal_api.limits_path("{org_id}"),
    dependencies=[Depends(InternalService("internal:orgs.limits"))],
)
async def org_limits(org_id: uuid.UUID, conn: Conn) -> OrgLimitsOut:
    """For the operator: the plan limits a Tenant CR of this organisation must fit."""
    return await service.org_limits(conn, org_id)
