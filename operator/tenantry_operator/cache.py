"""An in-memory view of every tenant's children, fed by the operator's watches.

Listing a dozen kinds per reconcile is what an operator must not do at hundreds of
tenants: the watches (kopf ``on.event`` handlers in handlers.py) already deliver every
change, so reconciles read this cache instead. A tenant's first reconcile after start-up
lists from the API (see reconcile.py), which also seeds the cache, so a restart never
acts on a half-filled cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tenantry_operator.model import LABEL_TENANT

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class LiveState:
    """What exists of one tenant."""

    namespace: Obj | None = None
    children: dict[Key, Obj] = field(default_factory=dict)  # the prunable kinds
    secrets: set[str] = field(default_factory=set)


@dataclass
class ChildCache:
    _by_tenant: dict[str, dict[Key, Obj]] = field(default_factory=dict)

    def observe(self, *, api_version: str, kind: str, obj: Obj, deleted: bool) -> str | None:
        """Record one watch event; returns the owning tenant, if any."""
        meta = obj.get("metadata") or {}
        tenant = (meta.get("labels") or {}).get(LABEL_TENANT)
        if not tenant:
            return None
        key = (kind, meta.get("namespace") or "", meta.get("name", ""))
        objs = self._by_tenant.setdefault(tenant, {})
        if deleted:
            objs.pop(key, None)
        else:
            objs[key] = slim({**obj, "apiVersion": api_version, "kind": kind})
        return str(tenant)

    def seed(self, tenant: str, state: LiveState) -> None:
        """Add what a list returned, without replacing newer watch data."""
        objs = self._by_tenant.setdefault(tenant, {})
        for key, obj in state.children.items():
            objs.setdefault(key, slim(obj))
        if state.namespace is not None:
            name = state.namespace["metadata"]["name"]
            objs.setdefault(("Namespace", "", name), state.namespace)

    def forget(self, tenant: str) -> None:
        self._by_tenant.pop(tenant, None)

    def state(self, tenant: str, namespace: str) -> LiveState:
        objs = self._by_tenant.get(tenant, {})
        children = {k: o for k, o in objs.items() if k[0] not in ("Namespace", "Secret")}
        return LiveState(
            namespace=objs.get(("Namespace", "", namespace)),
            children=children,
            secrets={k[2] for k in objs if k[0] == "Secret"},
        )


def slim(obj: Obj) -> Obj:
    """The object without managedFields (often half its size; nothing here reads them)."""
    meta = obj.get("metadata")
    if not meta or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
