"""Tenant custom resources of one organisation (no SQL: tenants live in Kubernetes)."""

from __future__ import annotations

import secrets
from typing import Any

from controlplane.kube import CustomObject, CustomResources
from controlplane.orgs.repository import OrgRow
from tenantry import contract


def resource_name(org: OrgRow, name: str) -> str:
    return slug_name(org.slug, name)


def slug_name(slug: str, name: str) -> str:
    """The CR name of object ``name`` of the organisation with this slug."""
    return f"{slug}-{name}"


def _mine(org: OrgRow, obj: CustomObject | None) -> CustomObject | None:
    return obj if obj is not None and obj.labels.get(contract.LABEL_ORG) == str(org.id) else None


async def create(
    crs: CustomResources, org: OrgRow, name: str, spec: dict[str, Any]
) -> CustomObject:
    return await crs.create(
        name=resource_name(org, name),
        labels={contract.LABEL_ORG: str(org.id), contract.LABEL_NAME: name},
        spec=spec,
    )


async def get(crs: CustomResources, org: OrgRow, name: str) -> CustomObject | None:
    return _mine(org, await crs.get(resource_name(org, name)))


async def list_all(crs: CustomResources, org: OrgRow) -> list[CustomObject]:
    return sorted(await crs.list({contract.LABEL_ORG: str(org.id)}), key=lambda o: o.name)


async def replace_spec(
    crs: CustomResources, org: OrgRow, name: str, spec: dict[str, Any]
) -> CustomObject:
    return await crs.replace_spec(resource_name(org, name), spec)


async def delete(crs: CustomResources, org: OrgRow, name: str) -> None:
    await crs.delete(resource_name(org, name))


async def create_restore(
    crs: CustomResources, org: OrgRow, tenant: str, spec: dict[str, Any]
) -> CustomObject:
    """A Restore of tenant ``tenant``, named after its Tenant with a random suffix (a
    Restore is immutable: each request is a new one)."""
    return await crs.create(
        name=f"{resource_name(org, tenant)}-{secrets.token_hex(4)}",
        labels={contract.LABEL_ORG: str(org.id), contract.LABEL_TENANT: tenant},
        spec=spec,
    )


async def restores(crs: CustomResources, org: OrgRow, tenant: str) -> list[CustomObject]:
    """The tenant's Restores, newest first."""
    found = await crs.list({contract.LABEL_ORG: str(org.id), contract.LABEL_TENANT: tenant})
    return sorted(found, key=lambda o: (o.created or "", o.name), reverse=True)
