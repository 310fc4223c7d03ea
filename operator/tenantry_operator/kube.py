"""The operator's only door to the Kubernetes API (async, lightkube).

Everything goes through ``Kube`` (the benchmark counts the operator's writes in the API
server's audit log, by the operator's own user) and manifests
stay plain dicts: the builders produce dicts, server-side apply takes dicts.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from lightkube import AsyncClient, KubeConfig
from lightkube.codecs import resource_registry
from lightkube.core.exceptions import ApiError
from lightkube.types import CascadeType, PatchType

from tenantry import listwatch
from tenantry.api import GROUP, VERSION
from tenantry.api.resources import DashboardResource, RestoreResource, TenantResource

FIELD_MANAGER = "tenantry-operator"
Obj = dict[str, Any]


def resource(api_version: str, kind: str) -> Any:
    if api_version == f"{GROUP}/{VERSION}":
        kinds = {
            "Tenant": TenantResource,
            "Dashboard": DashboardResource,
            "Restore": RestoreResource,
        }
        return kinds[kind]
    return resource_registry.load(api_version, kind)


def is_not_found(err: ApiError) -> bool:
    return err.status.code == 404


@dataclass
class Kube:
    client: AsyncClient
    # Told of every write (kind, verb) before it is sent: the operator's metrics.
    on_write: Callable[[str, str], None] = lambda _kind, _verb: None

    @classmethod
    def from_env(cls) -> Kube:
        try:
            config = KubeConfig.from_env()
        except Exception:  # no kubeconfig: AsyncClient tries the in-cluster account
            config = None
        return cls(AsyncClient(config=config, field_manager=FIELD_MANAGER))

    async def close(self) -> None:
        await self.client.close()

    @property
    def http(self) -> httpx.AsyncClient:
        """The configured HTTP connection (server, TLS, credentials) for raw requests
        such as the list-then-watch streams (``tenantry.listwatch``)."""
        return listwatch.http_of(self.client)

    # -- reads -----------------------------------------------------------------------
    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        try:
            obj = await self.client.get(resource(api_version, kind), name, namespace=namespace)
        except ApiError as err:
            if is_not_found(err):
                return None
            raise
        return _as_dict(obj)

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Obj]:
        res = resource(api_version, kind)
        items = []
        try:
            async for obj in self.client.list(res, namespace=namespace, labels=dict(labels or {})):
                items.append(_as_dict(obj))
        except ApiError as err:
            if is_not_found(err):
                return []
            raise
        return items

    async def log(self, pod: str, namespace: str, *, tail_lines: int) -> builtins.list[str] | None:
        """The last ``tail_lines`` lines of ``pod``'s log (its only container), or None
        when the log cannot be read: the pod is gone or has not started, or its node
        serves no logs."""
        try:
            return [
                line
                async for line in self.client.log(
                    pod, namespace=namespace, tail_lines=tail_lines, newlines=False
                )
            ]
        except (ApiError, httpx.HTTPError):
            return None

    # -- writes ----------------------------------------------------------------------
    async def apply(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        self.on_write(obj["kind"], "apply")
        result = await self.client.patch(
            resource(obj["apiVersion"], obj["kind"]),
            meta["name"],
            obj,
            namespace=meta.get("namespace"),
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=True,
        )
        return _as_dict(result)

    async def create(self, obj: Obj) -> Obj | None:
        """Create; None when it already exists (never overwrites)."""
        res = resource(obj["apiVersion"], obj["kind"])
        self.on_write(obj["kind"], "create")
        try:
            typed: Any = res.from_dict(obj)  # carries its own metadata.namespace
            result = await self.client.create(typed)
        except ApiError as err:
            if err.status.code == 409:
                return None
            raise
        return _as_dict(result)

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        orphan: bool = False,
    ) -> bool:
        """Delete; ``orphan`` leaves dependents (e.g. a StatefulSet's pods) in place."""
        self.on_write(kind, "delete")
        try:
            await self.client.delete(
                resource(api_version, kind),
                name,
                namespace=namespace,
                cascade=CascadeType.ORPHAN if orphan else None,
            )
        except ApiError as err:
            if is_not_found(err):
                return False
            raise
        return True

    async def patch_status(self, api_version: str, kind: str, name: str, status: Obj) -> None:
        self.on_write(kind, "patch_status")
        await self.client.patch(
            resource(api_version, kind).Status, name, {"status": status}, patch_type=PatchType.MERGE
        )

    async def patch(
        self, api_version: str, kind: str, name: str, patch: Obj, *, namespace: str | None = None
    ) -> Obj:
        """A merge patch; returns the object as the API server answered."""
        self.on_write(kind, "patch")
        result = await self.client.patch(
            resource(api_version, kind),
            name,
            patch,
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
        return _as_dict(result)


def _as_dict(obj: Any) -> Obj:
    if isinstance(obj, dict):
        return obj
    data: Obj = obj.to_dict()
    return data
