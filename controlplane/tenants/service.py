"""Rules of tenants: plan limits before any write, org ownership on every read.

The spec is forwarded as the user wrote it (``exclude_unset``) so the CRD's defaults
and the operator's plan presets stay in charge of everything unset.
"""

from __future__ import annotations

import asyncpg

from controlplane.apikeys import repository as apikeys
from controlplane.audit import service as audit
from controlplane.billing import catalog as billing_catalog
from controlplane.context import OrgAccess, RequestInfo
from controlplane.errors import Conflict, NotFound, PlanLimitExceeded, Unavailable
from controlplane.kube import CustomObject, CustomResources, KubeResources
from controlplane.tenants import repository
from controlplane.tenants.schemas import (
    RestoreCreate,
    RestoreOut,
    TenantCreate,
    TenantOut,
    TenantUpdate,
)
from tenantry import contract, plan_limits
from tenantry.api.tenant import TenantSpec


def _kube(kube: KubeResources | None) -> KubeResources:
    if kube is None:
        raise Unavailable("Kubernetes is not configured for this control plane")
    return kube


def crs(kube: KubeResources | None) -> CustomResources:
    return _kube(kube).tenants


def out(obj: CustomObject) -> TenantOut:
    return TenantOut(
        name=obj.labels.get(contract.LABEL_NAME, obj.name),
        resource_name=obj.name,
        spec=obj.spec,
        status=obj.status,
        generation=obj.generation,
        created=obj.created,
    )


def _spec(spec: TenantSpec) -> dict[str, object]:
    return spec.model_dump(by_alias=True, exclude_unset=True, mode="json")


def _check_plan(access: OrgAccess, spec: TenantSpec, existing: int) -> None:
    problem = plan_limits.violation(
        access.org.plan,
        billing_catalog.limits_out(access.org.plan),
        plan_limits.ask_of(spec),
        position=existing,
    )
    if problem:
        raise PlanLimitExceeded(problem)


async def create(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    body: TenantCreate,
    info: RequestInfo,
) -> TenantOut:
    resources = crs(kube)
    existing = await repository.list_all(resources, access.org)
    if any(o.labels.get(contract.LABEL_NAME) == body.name for o in existing):
        raise Conflict(f"tenant {body.name!r} already exists")
    _check_plan(access, body.spec, len(existing))
    await audit.record_as(
        conn, access, action="tenant.create", target=f"tenant/{body.name}", info=info
    )
    return out(await repository.create(resources, access.org, body.name, _spec(body.spec)))


async def list_visible(kube: KubeResources | None, access: OrgAccess) -> list[TenantOut]:
    found = await repository.list_all(crs(kube), access.org)
    items = [out(o) for o in found]
    return [t for t in items if access.allows("tenants:read", scope=("tenant", t.name))]


async def get(kube: KubeResources | None, access: OrgAccess, name: str) -> TenantOut:
    obj = await repository.get(crs(kube), access.org, name)
    if obj is None:
        raise NotFound("tenant not found")
    return out(obj)


async def update(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    *,
    name: str,
    body: TenantUpdate,
    info: RequestInfo,
) -> TenantOut:
    resources = crs(kube)
    if await repository.get(resources, access.org, name) is None:
        raise NotFound("tenant not found")
    others = [
        o
        for o in await repository.list_all(resources, access.org)
        if o.labels.get(contract.LABEL_NAME) != name
    ]
    _check_plan(access, body.spec, len(others))
    await audit.record_as(conn, access, action="tenant.update", target=f"tenant/{name}", info=info)
    return out(await repository.replace_spec(resources, access.org, name, _spec(body.spec)))


async def delete(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    *,
    name: str,
    info: RequestInfo,
) -> None:
    resources = crs(kube)
    if await repository.get(resources, access.org, name) is None:
        raise NotFound("tenant not found")
    revoked = await apikeys.revoke_tenant(conn, access.org.id, name)
    await audit.record_as(
        conn,
        access,
        action="tenant.delete",
        target=f"tenant/{name}",
        info=info,
        detail={"apikeys_revoked": str(revoked)},
    )
    await repository.delete(resources, access.org, name)


UNFINISHED = {"", "Pending", "Running"}  # a Restore's phase before it ends ("": not seen yet)


def restore_out(obj: CustomObject) -> RestoreOut:
    source = obj.spec.get("source") or {}
    return RestoreOut(
        name=obj.name,
        backup=str(source.get("backup", "latest")),
        overwrite=bool(obj.spec.get("overwrite", False)),
        status=obj.status,
        created=obj.created,
    )


async def restore(
    conn: asyncpg.Connection,
    kube: KubeResources | None,
    access: OrgAccess,
    *,
    name: str,
    body: RestoreCreate,
    info: RequestInfo,
) -> RestoreOut:
    """Restore one of the tenant's own backups into it: a ``Restore`` whose source is the
    tenant itself (never another tenant's backups). The operator holds the tenant's
    writers while it runs and reports on the Restore (docs/backup-restore.md, 2.1)."""
    tenants, restores = crs(kube), _kube(kube).restores
    tenant = await repository.get(tenants, access.org, name)
    if tenant is None:
        raise NotFound("tenant not found")
    if not (tenant.status.get("backup") or {}).get("count"):
        raise Conflict("this tenant has no complete backup to restore yet")
    running = [
        o
        for o in await repository.restores(restores, access.org, name)
        if o.status.get("phase", "") in UNFINISHED
    ]
    if running:
        raise Conflict(f"a restore of this tenant is still running ({running[0].name})")
    spec = {
        "tenant": tenant.name,
        "source": {"tenant": tenant.name, "backup": body.backup},
        "overwrite": body.overwrite,
    }
    await audit.record_as(
        conn,
        access,
        action="tenant.restore",
        target=f"tenant/{name}",
        info=info,
        detail={"backup": body.backup, "overwrite": str(body.overwrite).lower()},
    )
    return restore_out(await repository.create_restore(restores, access.org, name, spec))


async def restores_of(kube: KubeResources | None, access: OrgAccess, name: str) -> list[RestoreOut]:
    if await repository.get(crs(kube), access.org, name) is None:
        raise NotFound("tenant not found")
    found = await repository.restores(_kube(kube).restores, access.org, name)
    return [restore_out(o) for o in found]


async def count(kube: KubeResources | None, access: OrgAccess) -> int:
    if kube is None:
        return 0
    return len(await repository.list_all(kube.tenants, access.org))


async def exists(kube: KubeResources | None, access: OrgAccess, name: str) -> bool:
    return await repository.get(crs(kube), access.org, name) is not None
