"""HTTP routes of notifications: Alertmanager's webhook (internal token only) and an
organisation's list (``tenants:read``, filtered to the tenants the caller may read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from controlplane.context import OrgAccess
from controlplane.deps import Conn, State
from controlplane.internal import InternalService
from controlplane.notifications import service
from controlplane.notifications.schemas import AlertNotificationOut
from controlplane.rbac.dependencies import OrgPermission
from controlplane.tenants.service import crs
from tenantry import internal_api
from tenantry.internal_api import AlertmanagerWebhook, AlertsResult

router = APIRouter(prefix="/v1/orgs/{org_id}/notifications", tags=["notifications"])
internal_router = APIRouter(tags=["internal"])


@router.get("")
async def list_notifications(
    access: Annotated[OrgAccess, Depends(OrgPermission("tenants:read", scope="listing"))],
    conn: Conn,
) -> list[AlertNotificationOut]:
    return await service.list_visible(conn, access)


@internal_router.post(
    internal_api.ALERTS_PATH,
    dependencies=[Depends(InternalService("internal:alerts.receive"))],
)
async def receive_alerts(body: AlertmanagerWebhook, conn: Conn, state: State) -> AlertsResult:
    """For Alertmanager (a ``webhook_configs`` receiver with the internal token as its
    bearer credential): alerts naming a tenant become its organisation's notifications."""
    return await service.receive(conn, crs(state.kube), body, email=state.mailer is not None)
