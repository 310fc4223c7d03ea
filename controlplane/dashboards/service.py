"""Rules of dashboards: the referenced tenant must belong to the same organisation, the
plan's dashboard limit holds, and reads only ever return this organisation's objects."""

from __future__ import annotations

from typing import Any

import asyncpg

from controlplane.audit import service as audit
from controlplane.dashboards import repository
from controlplane.dashboards.schemas import DashboardCreate, DashboardOut, DashboardUpdate
from controlplane.deps import RequestInfo
from controlplane.errors import InvalidInput, NotFound, PlanLimitExceeded, Unavailable
from controlplane.kube import NAME_LABEL, CustomObject, CustomResources, KubeResources
from controlplane.orgs import plans
from controlplane.rbac.dependencies import OrgAccess
from controlplane.tenants import repository as tenant_repository
from tenantry.api.dashboard import DashboardSpec


def _crs(kube: KubeResources | None) -> tuple[CustomResources, CustomResources]:
    if kube is None:
        raise Unavailable("Kubernetes is not configured for this control plane")
    return kube.dashboards, kube.tenants


def _out(access: OrgAccess, obj: CustomObject) -> DashboardOut:
    spec = dict(obj.spec)
    ref = dict(spec.get("tenantRef") or {})
    prefix = f"{access.org.slug}-"
    tenant = str(ref.get("name", ""))
    tenant = tenant.removeprefix(prefix)
    spec["tenantRef"] = {**ref, "name": tenant}
    return DashboardOut(
        name=obj.labels.get(NAME_LABEL, obj.name),
        resource_name=obj.name,
        tenant=tenant,
        spec=spec,
        status=obj.status,
        generation=obj.generation,
        created=obj.created,
    )


async def _spec(tenants: CustomResources, access: OrgAccess, spec: DashboardSpec) -> dict[str, Any]:
    tenant = spec.tenant_ref.name
    if await tenant_repository.get(tenants, access.org, tenant) is None:
        raise InvalidInput(f"spec.tenantRef.name: no tenant {tenant!r} in this organisation")
    raw = spec.model_dump(by_alias=True, exclude_unset=True, mode="json")
    raw["tenantRef"] = {"name": tenant_repository.resource_name(access.org, tenant)}
    return raw


async def create(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    body: DashboardCreate,
    info: RequestInfo,
) -> DashboardOut:
    dashboards, tenants = _crs(kube)
    existing = await repository.list_all(dashboards, access.org)
    limit = plans.limits(access.org.plan).max_dashboards
    if len(existing) >= limit:
        raise PlanLimitExceeded(f"the {access.org.plan} plan allows {limit} dashboards")
    spec = await _spec(tenants, access, body.spec)
    await _audit(conn, access, "dashboard.create", body.name, info)
    return _out(access, await repository.create(dashboards, access.org, body.name, spec))


async def list_visible(kube: KubeResources | None, access: OrgAccess) -> list[DashboardOut]:
    dashboards, _ = _crs(kube)
    items = [_out(access, o) for o in await repository.list_all(dashboards, access.org)]
    return [d for d in items if access.allows("dashboards:read", scope=("dashboard", d.name))]


async def get(kube: KubeResources | None, access: OrgAccess, name: str) -> DashboardOut:
    dashboards, _ = _crs(kube)
    obj = await repository.get(dashboards, access.org, name)
    if obj is None:
        raise NotFound("dashboard not found")
    return _out(access, obj)


async def update(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    *,
    name: str,
    body: DashboardUpdate,
    info: RequestInfo,
) -> DashboardOut:
    dashboards, tenants = _crs(kube)
    if await repository.get(dashboards, access.org, name) is None:
        raise NotFound("dashboard not found")
    spec = await _spec(tenants, access, body.spec)
    await _audit(conn, access, "dashboard.update", name, info)
    return _out(access, await repository.replace_spec(dashboards, access.org, name, spec))


async def delete(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    *,
    name: str,
    info: RequestInfo,
) -> None:
    dashboards, _ = _crs(kube)
    if await repository.get(dashboards, access.org, name) is None:
        raise NotFound("dashboard not found")
    await _audit(conn, access, "dashboard.delete", name, info)
    await repository.delete(dashboards, access.org, name)


async def _audit(
    conn: asyncpg.Connection, access: OrgAccess, action: str, name: str, info: RequestInfo
) -> None:
    await audit.record(
        conn,
        org_id=access.org.id,
        actor=str(access.principal.user_id),
        action=action,
        target=f"dashboard/{name}",
        info=info,
    )
