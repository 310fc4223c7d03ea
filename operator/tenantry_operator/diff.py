"""Does the live object already hold what we want? (pure)

The API server adds defaults and bookkeeping to every object, so "unchanged" means the
desired manifest is *contained* in the live one: every field we set has the same value
there. Only labels, annotations and ownerReferences of ``metadata`` are ours to compare.
When this returns True the apply step skips the object entirely: no request, no write.
"""

from __future__ import annotations

from typing import Any

_OUR_METADATA = ("labels", "annotations", "ownerReferences", "name", "namespace")


def contains(desired: Any, live: Any) -> bool:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(k in live and contains(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(contains(d, lv) for d, lv in zip(desired, live, strict=True))
    return bool(desired == live)


def up_to_date(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return False
    want = {k: v for k, v in desired.items() if k not in ("metadata", "status")}
    meta = {k: v for k, v in desired.get("metadata", {}).items() if k in _OUR_METADATA}
    return contains(want, live) and contains(meta, live.get("metadata", {}))


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """Identity of an object within one tenant: (kind, namespace, name)."""
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]
