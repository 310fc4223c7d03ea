"""An in-memory view of every tenant's children, fed by the operator's watches.

Listing a dozen kinds per reconcile is what an operator must not do at hundreds of
tenants: the watches (children.py, list-then-watch loops) already deliver every
change, so reconciles read this cache instead. A tenant's first reconcile after start-up
lists from the API (see reconcile.py), which also seeds the cache, so a restart never
acts on a half-filled cache.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zstandard

from tenantry import contract

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class LiveState:
    """What exists of one tenant."""

    namespace: Obj | None = None
    children: dict[Key, Obj] = field(default_factory=dict)  # the prunable kinds
    secrets: set[str] = field(default_factory=set)
    # The ClickHouse hosts' pods by name, as `pod_summary` keeps them (never pruned:
    # the StatefulSets own them); the schema step reads their readiness and label.
    pods: dict[str, Obj] = field(default_factory=dict)

    @property
    def namespace_name(self) -> str:
        return str(self.namespace["metadata"]["name"]) if self.namespace else ""


@dataclass
class ChildCache:
    """Children per tenant, each kept as compact JSON bytes, compressed.

    At hundreds of tenants the children dominate the operator's memory: a StatefulSet as
    Python dicts and strings takes five to six times its JSON size, and a tenant's
    children are about 25 KB of JSON (ConfigMaps of XML, pod templates). Each object is
    compressed with zstd against ``dictionary``, a sample of what children look like
    (``dictionary_from`` the builders' objects for a sample tenant): a tenant's children
    then take about 2 KB, at about 5 us per object to compress and 1 us to decompress.
    Reconciles decode one tenant's children when they need them. Secrets are kept by
    name only: their data is never held here."""

    dictionary: bytes = field(default=b"", repr=False)
    _by_tenant: dict[str, dict[Key, bytes]] = field(default_factory=dict)
    _secrets: dict[str, set[Key]] = field(default_factory=dict)
    _pods: dict[str, dict[Key, Obj]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        zdict = (
            zstandard.ZstdCompressionDict(self.dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            if self.dictionary
            else None
        )
        self._compressor = zstandard.ZstdCompressor(
            level=1, dict_data=zdict, write_checksum=False, write_dict_id=False
        )
        self._decompressor = zstandard.ZstdDecompressor(dict_data=zdict)

    def _encode(self, obj: Obj) -> bytes:
        return self._compressor.compress(_json(obj))

    def _decode(self, data: bytes) -> Obj:
        return _DECODER.decode(self._decompressor.decompress(data))

    def observe(self, *, api_version: str, kind: str, obj: Obj, deleted: bool) -> str | None:
        """Record one watch event; returns the owning tenant, if any."""
        meta = obj.get("metadata") or {}
        tenant = (meta.get("labels") or {}).get(contract.LABEL_TENANT)
        if not tenant:
            return None
        key = (kind, meta.get("namespace") or "", meta.get("name", ""))
        if kind == "Pod":
            pods = self._pods.setdefault(tenant, {})
            if deleted:
                pods.pop(key, None)
            elif key not in pods or not _older(meta, pods[key]):
                # an event older than the answer to our own label patch keeps that answer
                pods[key] = pod_summary(obj)
            return str(tenant)
        if kind == "Secret":
            names = self._secrets.setdefault(tenant, set())
            if deleted:
                names.discard(key)
            else:
                names.add(key)
            return str(tenant)
        objs = self._by_tenant.setdefault(tenant, {})
        if deleted:
            objs.pop(key, None)
        else:
            objs[key] = self._encode({**obj, "apiVersion": api_version, "kind": kind})
        return str(tenant)

    def record(self, *, api_version: str, kind: str, obj: Obj, deleted: bool) -> str | None:
        """Record the API's answer to one of our own writes.

        The watch may already have delivered a newer version of the object (a
        controller updating its status right after our apply), so an answer older than
        what is cached must not replace it: the object may never change again, and the
        tenant would then wait on a stale status for good. resourceVersions of one
        object are etcd revisions, compared as integers; anything else keeps the
        cached copy (the watch is authoritative)."""
        meta = obj.get("metadata") or {}
        tenant = (meta.get("labels") or {}).get(contract.LABEL_TENANT)
        if tenant and not deleted and kind != "Secret":
            key = (kind, meta.get("namespace") or "", meta.get("name", ""))
            cached = self._by_tenant.get(tenant, {}).get(key)
            if cached is not None and not _newer(meta, self._decode(cached)):
                return str(tenant)
        return self.observe(api_version=api_version, kind=kind, obj=obj, deleted=deleted)

    def relist(self, *, api_version: str, kind: str, objs: list[Obj]) -> set[str]:
        """Replace everything of ``kind`` with a fresh list; returns the tenants touched
        (an object that vanished while no watch was open is dropped here)."""
        touched: set[str] = set()
        present: set[Key] = set()
        for obj in objs:
            meta = obj.get("metadata") or {}
            present.add((kind, meta.get("namespace") or "", meta.get("name", "")))
            tenant = self.observe(api_version=api_version, kind=kind, obj=obj, deleted=False)
            if tenant:
                touched.add(tenant)
        stores: list[tuple[str, Any]] = [
            *self._by_tenant.items(),
            *self._secrets.items(),
            *self._pods.items(),
        ]
        for tenant, store in stores:
            gone = [k for k in store if k[0] == kind and k not in present]
            for key in gone:
                if isinstance(store, set):
                    store.discard(key)
                else:
                    store.pop(key, None)
                touched.add(tenant)
        return touched

    def seed(self, tenant: str, state: LiveState) -> None:
        """Add what a list returned, without replacing newer watch data."""
        objs = self._by_tenant.setdefault(tenant, {})
        for key, obj in state.children.items():
            if key not in objs:
                objs[key] = self._encode(obj)
        if state.namespace is not None:
            key = ("Namespace", "", state.namespace["metadata"]["name"])
            if key not in objs:
                objs[key] = self._encode(state.namespace)
        names = self._secrets.setdefault(tenant, set())
        for name in state.secrets:
            names.add(("Secret", state.namespace_name, name))
        pods = self._pods.setdefault(tenant, {})
        for name, pod in state.pods.items():
            pods.setdefault(("Pod", state.namespace_name, name), pod)

    def forget(self, tenant: str) -> None:
        self._by_tenant.pop(tenant, None)
        self._secrets.pop(tenant, None)
        self._pods.pop(tenant, None)

    def state(self, tenant: str, namespace: str) -> LiveState:
        objs = self._by_tenant.get(tenant, {})
        children = {k: self._decode(b) for k, b in objs.items() if k[0] != "Namespace"}
        ns = objs.get(("Namespace", "", namespace))
        return LiveState(
            namespace=self._decode(ns) if ns is not None else None,
            children=children,
            secrets={k[2] for k in self._secrets.get(tenant, ()) if k[1] == namespace},
            pods={k[2]: p for k, p in self._pods.get(tenant, {}).items() if k[1] == namespace},
        )


def pod_summary(pod: Obj) -> Obj:
    """What the operator keeps of a pod: name, labels, deletion, conditions."""
    meta = pod.get("metadata") or {}
    names = ("name", "namespace", "labels", "deletionTimestamp", "resourceVersion")
    kept = {k: meta[k] for k in names if k in meta}
    conditions = (pod.get("status") or {}).get("conditions") or []
    return {
        "metadata": kept,
        "status": {
            "conditions": [{"type": c.get("type"), "status": c.get("status")} for c in conditions]
        },
    }


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])


def _json(obj: Obj) -> bytes:
    """The object without managedFields (often half its size; nothing here reads them)."""
    meta = obj.get("metadata")
    if meta and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return _ENCODER.encode(obj)


def dictionary_from(objs: Iterable[Obj]) -> bytes:
    """A compression dictionary for ``ChildCache``: sample objects, as the cache keeps them."""
    return b"".join(_json(o) for o in objs)


def _versions(meta: Obj, cached: Obj) -> tuple[int, int] | None:
    """(``meta``'s resourceVersion, ``cached``'s), None when either is unknown.
    resourceVersions of one object are etcd revisions, comparable as integers."""
    try:
        mine = int(meta.get("resourceVersion") or "")
        theirs = int((cached.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return None
    return mine, theirs


def _older(meta: Obj, cached: Obj) -> bool:
    """``meta``'s resourceVersion is older than ``cached``'s (False when unknown)."""
    versions = _versions(meta, cached)
    return versions is not None and versions[0] < versions[1]


def _newer(meta: Obj, cached: Obj) -> bool:
    """``meta``'s resourceVersion is newer than ``cached``'s (False when unknown)."""
    versions = _versions(meta, cached)
    return versions is not None and versions[0] > versions[1]
