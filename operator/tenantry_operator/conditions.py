"""Status conditions, set one way for every resource the operator writes (pure).

Kubernetes conventions: a condition's ``lastTransitionTime`` moves only when its
``status`` flips (True/False/Unknown), not when its reason or message changes; every
condition carries the generation it was computed from; setting one condition never
drops the others. Tenants (``observe``, ``reconcile``, ``worker``, ``finalize``) and
Dashboards (``dataplane.dashboards``, ``dashboard_worker``) all go through ``set_condition``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Cond:
    type: str
    ok: bool | None  # None: Unknown
    reason: str
    message: str

    @property
    def status(self) -> str:
        return "Unknown" if self.ok is None else ("True" if self.ok else "False")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Iterable[Obj] | None, ctype: str) -> Obj | None:
    """The condition of type ``ctype``, or None."""
    return next((c for c in conditions or () if c.get("type") == ctype), None)


def set_condition(
    conditions: Sequence[Obj] | None,
    cond: Cond,
    *,
    generation: int | None,
    since: Sequence[Obj] | None = None,
) -> list[Obj]:
    """``conditions`` with ``cond`` set: a condition of the same type is replaced where it
    stands, otherwise ``cond`` is appended; the others are kept as they are.

    ``lastTransitionTime`` is carried over from the condition of that type in ``since``
    (``conditions`` itself unless given) when its status is the same, else it is now.
    Returns a new list; the input is not changed."""
    before = find(conditions if since is None else since, cond.type)
    kept = before is not None and before.get("status") == cond.status
    transition = str(before.get("lastTransitionTime") or "") if kept and before else ""
    rendered = {
        "type": cond.type,
        "status": cond.status,
        "reason": cond.reason,
        "message": cond.message,
        "observedGeneration": generation,
        "lastTransitionTime": transition or now(),
    }
    out = [dict(c) for c in conditions or ()]
    for i, c in enumerate(out):
        if c.get("type") == cond.type:
            out[i] = rendered
            return out
    out.append(rendered)
    return out


def set_conditions(
    conditions: Sequence[Obj] | None,
    conds: Iterable[Cond],
    *,
    generation: int | None,
    since: Sequence[Obj] | None = None,
) -> list[Obj]:
    """``set_condition`` for each of ``conds`` in turn."""
    out = list(conditions or ())
    base = out if since is None else since
    for cond in conds:
        out = set_condition(out, cond, generation=generation, since=base)
    return out
