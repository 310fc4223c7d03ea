"""The control plane's only door to Kubernetes: the Tenant, Dashboard and Restore custom
resources (Restores created and listed only, never watched: the tenant page asks).

A small async repository over lightkube's generic resources. Objects are cluster-scoped
and named ``<org slug>-<name>``; the labels carry the org id and the short name, and a
read whose labels name another org is treated as missing. Kubernetes API errors become
domain errors here (409 conflict, 422 with the API server's own validation message,
anything else 503), so the services never see lightkube types.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2
import tenacity
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from controlplane.errors import Conflict, InvalidInput, NotFound, Unavailable
from controlplane.mirror import Mirror
from tenantry import contract, listwatch
from tenantry.api import GROUP, VERSION
from tenantry.api.resources import (
    DASHBOARDS,
    RESTORES,
    TENANTS,
    DashboardResource,
    RestoreResource,
    TenantResource,
)

FIELD_MANAGER = "tenantry-controlplane"
_RETRIES = 20
T = TypeVar("T")


@dataclass(frozen=True)
class CustomObject:
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)
    generation: int | None = None
    created: str | None = None
    resource_version: str = ""


def _object(raw: Any) -> CustomObject:
    data: dict[str, Any] = raw.to_dict() if hasattr(raw, "to_dict") else dict(raw)
    meta = data.get("metadata") or {}
    return CustomObject(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        spec=dict(data.get("spec") or {}),
        status=dict(data.get("status") or {}),
        generation=meta.get("generation"),
        created=meta.get("creationTimestamp"),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def _translate(exc: ApiError) -> Exception:
    code = exc.status.code or 0
    message = exc.status.message or "rejected by the Kubernetes API"
    if code == 409:
        return Conflict("an object with this name already exists")
    if code in (400, 422):
        return InvalidInput(message)
    if code == 404:
        return NotFound("not found")
    return Unavailable(f"the Kubernetes API answered {code}")


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.status.code == 429


async def _call(operation: Callable[[], Awaitable[T]]) -> T:
    """Run one API call, retrying briefly on 429 (the API server's "try again": it
    answers so while a new CRD's storage initialises, or under priority-and-fairness
    pressure): up to ``_RETRIES`` attempts, 0.1 s apart and 0.1 s more each time.
    An API server that cannot be reached is ``Unavailable`` (503)."""
    try:
        async for attempt in tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(_RETRIES),
            wait=tenacity.wait_incrementing(start=0.1, increment=0.1),
            retry=tenacity.retry_if_exception(_busy),
            reraise=True,
        ):
            with attempt:
                return await operation()
    except ApiError:  # the API server's answer (an httpx2.HTTPStatusError too): the caller's
        raise
    except httpx2.HTTPError:  # lightkube's transport errors are httpx2's, not httpx's
        raise Unavailable("the Kubernetes API is unreachable") from None
    raise AssertionError("unreachable: tenacity returns or raises")


class CustomResources:
    """CRUD on one cluster-scoped custom resource kind."""

    def __init__(
        self, client: AsyncClient, resource: Any, kind: str, plural: str, *, watch: bool
    ) -> None:
        self._client = client
        self._resource = resource
        self._kind = kind
        watched = listwatch.Kind(f"{GROUP}/{VERSION}", kind, plural)
        self.mirror: Mirror[CustomObject] | None = (
            Mirror(client, watched, _object) if watch else None
        )

    def _mirrored(self) -> Mirror[CustomObject] | None:
        return self.mirror if self.mirror is not None and self.mirror.synced else None

    async def create(
        self, *, name: str, labels: dict[str, str], spec: dict[str, Any]
    ) -> CustomObject:
        obj = self._resource(
            apiVersion=f"{GROUP}/{VERSION}",
            kind=self._kind,
            metadata=ObjectMeta(
                name=name, labels={**labels, contract.LABEL_MANAGED_BY: FIELD_MANAGER}
            ),
            spec=spec,
        )
        try:
            created = _object(await _call(lambda: self._client.create(obj)))
        except ApiError as exc:
            raise _translate(exc) from None
        if self.mirror is not None:
            self.mirror.put(created)
        return created

    async def get(self, name: str) -> CustomObject | None:
        mirror = self._mirrored()
        if mirror is not None:
            return mirror.get(name)
        try:
            return _object(await _call(lambda: self._client.get(self._resource, name=name)))
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise _translate(exc) from None

    async def list(self, labels: dict[str, str]) -> list[CustomObject]:
        mirror = self._mirrored()
        if mirror is not None:
            return mirror.select(labels)

        async def collect() -> list[CustomObject]:
            selector: dict[str, Any] = dict(labels)
            return [_object(o) async for o in self._client.list(self._resource, labels=selector)]

        try:
            return await _call(collect)
        except ApiError as exc:
            raise _translate(exc) from None

    async def replace_spec(self, name: str, spec: dict[str, Any]) -> CustomObject:
        patch = [{"op": "replace", "path": "/spec", "value": spec}]
        try:
            updated = _object(
                await _call(
                    lambda: self._client.patch(
                        self._resource, name, patch, patch_type=PatchType.JSON
                    )
                )
            )
        except ApiError as exc:
            raise _translate(exc) from None
        if self.mirror is not None:
            self.mirror.put(updated)
        return updated

    async def delete(self, name: str) -> None:
        try:
            await _call(lambda: self._client.delete(self._resource, name))
        except ApiError as exc:
            if exc.status.code != 404:
                raise _translate(exc) from None
        if self.mirror is not None:
            # Gone, or terminating behind a finalizer: the watch brings the latter back.
            self.mirror.remove(name)


class KubeResources:
    def __init__(self, client: AsyncClient, *, watch: bool) -> None:
        self.client = client
        self.tenants = CustomResources(client, TenantResource, "Tenant", TENANTS, watch=watch)
        self.dashboards = CustomResources(
            client, DashboardResource, "Dashboard", DASHBOARDS, watch=watch
        )
        self.restores = CustomResources(client, RestoreResource, "Restore", RESTORES, watch=False)

    @classmethod
    def connect(cls, kubeconfig: str | None, *, watch: bool) -> KubeResources:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        return cls(AsyncClient(config=config, field_manager=FIELD_MANAGER), watch=watch)

    def _mirrors(self) -> list[Mirror[CustomObject]]:
        return [m for m in (self.tenants.mirror, self.dashboards.mirror) if m is not None]

    async def start(self, *, within: float = 10.0) -> None:
        """Start the mirrors and wait (bounded) for their first listing."""
        for mirror in self._mirrors():
            mirror.start()
        for mirror in self._mirrors():
            await mirror.wait_synced(within)

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One value of a Secret (decoded), None when the Secret or the key is missing.

        The only read outside the two custom resources: panel queries need the tenant's
        ClickHouse reader password, which the operator keeps in the tenant namespace.
        """
        try:
            secret = await _call(lambda: self.client.get(Secret, name=name, namespace=namespace))
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise _translate(exc) from None
        encoded = (secret.data or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded else None

    async def ping(self) -> bool:
        try:
            async for _ in self.client.list(TenantResource, chunk_size=1):
                break
            return True
        except (ApiError, httpx2.HTTPError):
            return False

    async def close(self) -> None:
        for mirror in self._mirrors():
            await mirror.stop()
        await self.client.close()
