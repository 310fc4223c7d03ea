"""A Dashboard's reconcile (called by the kopf handlers in handlers.py): validate every
panel against the tenant's schema and keep its materialized views
(``dataplane.dashboards``), with whatever goes wrong put on the Dashboard.

Its Ready condition says why (with a Warning event when that is news) and the handler
is retried with a backoff, or, for a spec the models refuse, waits for the spec to
change.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import kopf
from pydantic import ValidationError

from tenantry.api import GROUP, VERSION
from tenantry.api.dashboard import DashboardSpec
from tenantry.clickhouse.client import ClickHouseError
from tenantry_operator import normalize
from tenantry_operator.conditions import Cond, set_conditions
from tenantry_operator.dataplane import connect, dashboards
from tenantry_operator.runtime import Runtime
from tenantry_operator.worker import ERROR_BACKOFF, invalid_spec

log = logging.getLogger(__name__)
TENANT_WAIT_SECONDS = 15.0  # look again this soon while the tenant is not Ready


async def reconcile(rt: Runtime, body: kopf.Body, patch: kopf.Patch) -> float | None:
    """One reconcile of a Dashboard; the delay before looking again, if it must be."""
    name, meta, status = body.meta["name"], body.meta, body.status
    dashboard = DashboardSpec.model_validate(dict(body.spec))
    kube = rt.kube
    tenant_name = dashboard.tenant_ref.name
    previous_panels = list(status.get("panels") or [])
    tenant_body = await kube.get(f"{GROUP}/{VERSION}", "Tenant", tenant_name)
    retry_in: float | None = None
    if tenant_body is None or not dashboards.tenant_ready(tenant_body.get("status")):
        outcome = dashboards.unavailable(
            tenant_name=tenant_name, tenant_exists=tenant_body is not None, previous=previous_panels
        )
        retry_in = TENANT_WAIT_SECONDS
    else:
        outcome = await _outcome(rt, tenant_body, name, dashboard, previous_panels)
    new_status = outcome.status(generation=meta.get("generation"), previous=dict(status))
    patch.status.update(new_status)
    news = _ready_of(new_status) != _ready_of(dict(status))
    for notice in outcome.notices:
        if retry_in is None or news:  # waiting for the tenant: said once, not every retry
            (kopf.warn if notice.warning else kopf.info)(
                body, reason=notice.reason, message=notice.message
            )
    return retry_in


def _ready_of(status: dict[str, Any]) -> tuple[Any, ...]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return (cond.get("status"), cond.get("reason"), cond.get("message"))
    return ()


async def failed(rt: Runtime, body: kopf.Body, err: Exception, *, retry: int) -> NoReturn:
    """Put a failed Dashboard reconcile on the Dashboard, then raise the kopf error that
    schedules the next attempt."""
    name, meta, status = body.meta["name"], body.meta, body.status
    permanent = False
    if isinstance(err, ValidationError):
        reason, message, permanent = "InvalidSpec", invalid_spec(err), True
    elif isinstance(err, TenantUnusable):
        reason, message = "TenantInvalid", str(err)
    elif isinstance(err, dashboards.DataPlaneUnavailable | ClickHouseError):
        reason, message = "DataPlaneUnavailable", f"the tenant's ClickHouse cannot answer: {err}"
    else:
        log.exception("reconcile of dashboard %s failed", name)
        reason, message = "ReconcileError", f"{type(err).__name__}: {err}"
    message = message[:2000]
    generation = int(meta.get("generation") or 0)
    current = dict(status)
    failed = [Cond("Ready", False, reason, message)]
    if permanent:
        failed.append(Cond("Valid", False, reason, message))
    new_status: dict[str, Any] = {
        "conditions": set_conditions(current.get("conditions"), failed, generation=generation),
        "observedGeneration": generation,
    }
    if _ready_of(new_status) != _ready_of(current):
        kopf.warn(body, reason=reason, message=message)
        try:
            await rt.kube.patch_status(f"{GROUP}/{VERSION}", "Dashboard", name, new_status)
        except Exception:  # the API itself may be what is failing
            log.warning("could not report the failure of dashboard %s in its status", name)
    if permanent:
        raise kopf.PermanentError(message) from err
    raise kopf.TemporaryError(message, delay=ERROR_BACKOFF.delay(retry + 1)) from err


class TenantUnusable(Exception):
    """The Dashboard's Tenant cannot be used (its spec is one the operator refuses)."""


async def _outcome(
    rt: Runtime,
    tenant_body: dict[str, Any],
    name: str,
    dashboard: DashboardSpec,
    previous: list[Any],
) -> dashboards.DashboardOutcome:
    settings, kube = rt.settings, rt.kube
    try:
        model = normalize.tenant_model(tenant_body, images=settings.images)
    except ValidationError as err:  # a stack that ran before its spec became invalid
        raise TenantUnusable(
            f"Tenant {dashboard.tenant_ref.name} has a spec the operator refuses: "
            + invalid_spec(err)
        ) from err
    async with connect.session(
        kube, model, override=settings.clickhouse_override, scoped=True
    ) as client:
        if client is None:
            raise dashboards.DataPlaneUnavailable("the tenant's credentials are not there yet")
        return await dashboards.reconcile_dashboard(
            client, tenant=model, name=name, spec=dashboard, previous=previous
        )


async def drop(rt: Runtime, name: str, spec: kopf.Spec, retry: int) -> None:
    """Drop the dashboard's materialized views (a few retries, then let it go)."""
    kube = rt.kube
    tenant_body = await kube.get(f"{GROUP}/{VERSION}", "Tenant", spec["tenantRef"]["name"])
    if tenant_body is None or not dashboards.tenant_ready(tenant_body.get("status")):
        return  # no ClickHouse to clean (or it is going away with its tenant)
    settings = rt.settings
    try:
        model = normalize.tenant_model(tenant_body, images=settings.images)
    except ValidationError:
        log.warning("left the views of dashboard %s in place: its Tenant's spec is invalid", name)
        return
    try:
        async with connect.session(
            kube, model, override=settings.clickhouse_override, scoped=False
        ) as client:
            if client is None:
                return
            await dashboards.drop_dashboard(client, tenant=model, name=name)
    except ClickHouseError as err:
        if retry < 3:
            raise kopf.TemporaryError(f"dropping views: {err}", delay=5) from err
        log.warning("left the views of dashboard %s in place: %s", name, err)
