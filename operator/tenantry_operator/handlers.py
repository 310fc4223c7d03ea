"""kopf handlers: unpack kopf's arguments, call the reconcile steps, report.

Handlers stay thin (see DESIGN.md): parsing into the pydantic models is the first
"normalize" step; an invalid spec (which the CRD schema should already have stopped)
is a permanent error, never a crash loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf
from pydantic import ValidationError

from tenantry.api import GROUP, VERSION
from tenantry.api.dashboard import DashboardSpec
from tenantry.api.tenant import TenantSpec


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(model: type[TenantSpec] | type[DashboardSpec], spec: Any) -> Any:
    try:
        return model.model_validate(dict(spec))
    except ValidationError as err:
        raise kopf.PermanentError(f"invalid spec: {err.errors(include_url=False)}") from err


def _observed(patch: kopf.Patch, generation: int | None, message: str) -> None:
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = [
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "Observed",
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": _now(),
        }
    ]


@kopf.on.resume(GROUP, VERSION, "tenants")
@kopf.on.create(GROUP, VERSION, "tenants")
@kopf.on.update(GROUP, VERSION, "tenants")
def tenant_changed(
    spec: kopf.Spec, meta: kopf.Meta, patch: kopf.Patch, logger: kopf.Logger, **_: Any
) -> None:
    tenant: TenantSpec = _parse(TenantSpec, spec)
    logger.info("tenant %s observed (plan %s)", meta.get("name"), tenant.plan.value)
    _observed(patch, meta.get("generation"), "spec accepted by the operator")


@kopf.on.resume(GROUP, VERSION, "dashboards")
@kopf.on.create(GROUP, VERSION, "dashboards")
@kopf.on.update(GROUP, VERSION, "dashboards")
def dashboard_changed(
    spec: kopf.Spec, meta: kopf.Meta, patch: kopf.Patch, logger: kopf.Logger, **_: Any
) -> None:
    dashboard: DashboardSpec = _parse(DashboardSpec, spec)
    logger.info("dashboard %s observed (%d panels)", meta.get("name"), len(dashboard.panels))
    _observed(patch, meta.get("generation"), "spec accepted by the operator")
