"""Does the live object already hold what we want? (pure)

Each desired object is stamped with a hash of itself (``ANNOTATION_APPLIED_HASH``, an annotation)
before it is compared. An object is up to date when the live one carries the same
stamp *and* still contains every field we set with the same value:

- the stamp catches what containment cannot see: a field, an env var or a container
  the desired object no longer has. A changed desired object has a new hash, so it is
  applied, and server-side apply removes the fields our field manager owned and no
  longer sends;
- containment catches drift: someone edited a field we set.

The API server adds defaults and bookkeeping to every object, so containment means
every field we set has the same value there. Only labels, annotations and
ownerReferences of ``metadata`` are ours to compare. When ``up_to_date`` is True the
apply step skips the object entirely: no request, no write.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tenantry_operator.model import ANNOTATION_APPLIED_HASH

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


def applied_hash(obj: dict[str, Any]) -> str:
    """A digest of the object as we would apply it, its own stamp left out."""
    meta = dict(obj.get("metadata") or {})
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != ANNOTATION_APPLIED_HASH
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    canonical = json.dumps({**obj, "metadata": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its ``ANNOTATION_APPLIED_HASH`` annotation (a new dict; ``obj`` is
    unchanged)."""
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        ANNOTATION_APPLIED_HASH: applied_hash(obj),
    }
    return {**obj, "metadata": meta}


def up_to_date(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """``desired`` must be stamped (``stamp``): then a live object applied from an
    older desired object differs in its stamp, and is applied again."""
    if live is None:
        return False
    want = {k: v for k, v in desired.items() if k not in ("metadata", "status")}
    meta = {k: v for k, v in desired.get("metadata", {}).items() if k in _OUR_METADATA}
    return contains(want, live) and contains(meta, live.get("metadata", {}))


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """Identity of an object within one tenant: (kind, namespace, name)."""
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]
