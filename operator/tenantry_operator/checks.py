"""checks: what the operator refuses before it applies anything (pure).

The CRD refuses most bad specs at the API server, but some are bad only once the plan's
defaults are filled in and the objects are built, and some only against what already
runs. These are checked here, on the built objects, before the first write: a Tenant
that fails is refused as a whole (nothing partial is applied; a running stack is left
as it is) and its status says which fields to change.

* ``quota``: the pods and volumes the stack needs, added up from the built workloads
  (replicas x pod requests and limits, the autoscaler's maximum plus the rollout surge,
  the backup job, volumes per replica) against the plan's ResourceQuota, which would
  otherwise refuse them one by one, long after the Tenant was accepted.
* ``volumes``: a volume must not shrink nor change class against the live StatefulSets
  (the CRD's rules compare specs; this compares with what exists, e.g. for a Tenant
  written before those rules or a plan whose defaults changed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tenantry.api import quantity
from tenantry_operator.model import LABEL_COMPONENT

Obj = dict[str, Any]
RESOURCES = ("requests.cpu", "limits.cpu", "requests.memory", "limits.memory")
# component label -> (how a message names it, the spec field of its pods' resources,
# the spec field of its volume size)
COMPONENTS = {
    "clickhouse": ("ClickHouse", "spec.clickhouse.resources", "spec.clickhouse.storage.size"),
    "keeper": ("Keeper", "spec.keeper.resources", "spec.keeper.storage.size"),
    "redis": ("Redis", "spec.redis.resources", "spec.redis.storage.size"),
    "ingestion": ("ingestion", "spec.ingestion.resources", ""),
    "backup": ("backup job", "", ""),
}


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


@dataclass
class _Part:
    """What one component asks for: pods, and per pod each resource; volumes."""

    pods: int = 0
    per_pod: dict[str, Fraction] = field(default_factory=dict)
    volumes: int = 0
    per_volume: Fraction = Fraction(0)
    pod_note: str = ""


def _pod_amounts(template: Obj) -> dict[str, Fraction]:
    """Requests and limits of a pod as a ResourceQuota counts them: the sum over its
    containers, or the largest init container when that is more."""
    spec = (template.get("spec") or {}) if template else {}

    def total(containers: Iterable[Obj], key: str, resource: str) -> list[Fraction]:
        return [
            quantity.parse(str(((c.get("resources") or {}).get(key) or {}).get(resource, "0")))
            for c in containers
        ]

    out = {}
    for name in RESOURCES:
        key, resource = name.split(".")
        main = sum(total(spec.get("containers") or [], key, resource), Fraction(0))
        init = max(total(spec.get("initContainers") or [], key, resource), default=Fraction(0))
        out[name] = max(main, init)
    return out


def _surge(dep: Obj) -> int:
    strategy = (dep.get("spec") or {}).get("strategy") or {}
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", 1)
    return surge if isinstance(surge, int) else 1


def _parts(desired: Iterable[Obj]) -> dict[str, _Part]:
    objs = list(desired)
    hpa_max = {
        str(o["spec"]["scaleTargetRef"]["name"]): int(o["spec"]["maxReplicas"])
        for o in objs
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    parts: dict[str, _Part] = {}
    for obj in objs:
        component = str((obj["metadata"].get("labels") or {}).get(LABEL_COMPONENT, obj["kind"]))
        spec = obj.get("spec") or {}
        if obj["kind"] == "StatefulSet":
            pods, template = int(spec.get("replicas", 1)), spec.get("template") or {}
        elif obj["kind"] == "Deployment":
            name = obj["metadata"]["name"]
            base = hpa_max.get(name, int(spec.get("replicas", 1)))
            pods, template = base + (_surge(obj) if base else 0), spec.get("template") or {}
            part = parts.setdefault(component, _Part())
            source = "autoscaling.maxReplicas" if name in hpa_max else "replicas"
            part.pod_note = f" ({source} + 1 during rollouts)"
        elif obj["kind"] == "CronJob":
            # concurrencyPolicy Forbid: one job, one pod at a time.
            pods = 0 if spec.get("suspend") else 1
            template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        else:
            continue
        part = parts.setdefault(component, _Part())
        part.pods += pods
        amounts = _pod_amounts(template)
        for name, value in amounts.items():
            part.per_pod[name] = max(part.per_pod.get(name, Fraction(0)), value)
        for claim in spec.get("volumeClaimTemplates") or []:
            size = quantity.parse(str(claim["spec"]["resources"]["requests"]["storage"]))
            part.volumes += int(spec.get("replicas", 1))
            part.per_volume = max(part.per_volume, size)
    return parts


def _fmt(resource: str, value: Fraction) -> str:
    if resource.endswith("cpu"):
        return quantity.cores(value)
    if resource in ("pods", "persistentvolumeclaims"):
        return str(int(value))
    return quantity.size(value)


def quota(desired: Iterable[Obj], *, plan: str) -> Refusal | None:
    """Whether the built stack fits the ResourceQuota it is built with; why not."""
    objs = list(desired)
    hard_obj = next((o for o in objs if o["kind"] == "ResourceQuota"), None)
    if hard_obj is None:
        return None
    hard = {k: quantity.parse(str(v)) for k, v in hard_obj["spec"]["hard"].items()}
    parts = _parts(objs)
    lines = []
    for resource in (*RESOURCES, "requests.storage", "pods", "persistentvolumeclaims"):
        if resource not in hard:
            continue
        terms: list[tuple[str, Fraction]] = []
        for component, part in parts.items():
            label, resources_field, storage_field = COMPONENTS.get(component, (component, "", ""))
            if resource in RESOURCES:
                each = part.per_pod.get(resource, Fraction(0))
                if part.pods and each:
                    where = f" [{resources_field}.{resource}]" if resources_field else ""
                    text = f"{label} {part.pods}{part.pod_note} x {_fmt(resource, each)}{where}"
                    terms.append((text, part.pods * each))
            elif resource == "requests.storage" and part.volumes:
                where = f" [{storage_field}]" if storage_field else ""
                text = f"{label} {part.volumes} x {_fmt(resource, part.per_volume)}{where}"
                terms.append((text, part.volumes * part.per_volume))
            elif resource == "pods" and part.pods:
                terms.append((f"{label} {part.pods}{part.pod_note}", Fraction(part.pods)))
            elif resource == "persistentvolumeclaims" and part.volumes:
                terms.append((f"{label} {part.volumes}", Fraction(part.volumes)))
        need = sum((v for _, v in terms), Fraction(0))
        if need > hard[resource]:
            lines.append(
                f"{resource}: the stack needs {_fmt(resource, need)} but the {plan} plan's "
                f"quota is {_fmt(resource, hard[resource])} ("
                + " + ".join(t for t, _ in terms)
                + ")"
            )
    if not lines:
        return None
    return Refusal(
        "QuotaExceeded",
        "the Tenant does not fit its plan's ResourceQuota, which would refuse its pods or "
        "volumes: " + "; ".join(lines) + ". Lower the fields named, or choose a larger spec.plan",
    )


def _claims(sts: Obj) -> dict[str, tuple[Fraction, str]]:
    out = {}
    for claim in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        spec = claim.get("spec") or {}
        size = str(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
        out[str(claim["metadata"]["name"])] = (
            quantity.parse(size),
            str(spec.get("storageClassName") or ""),
        )
    return out


def volumes(desired: Iterable[Obj], live: Mapping[tuple[str, str, str], Obj]) -> Refusal | None:
    """Whether any volume would shrink or change class against the live StatefulSets."""
    lines = []
    for obj in desired:
        if obj["kind"] != "StatefulSet":
            continue
        meta = obj["metadata"]
        current = live.get(("StatefulSet", meta.get("namespace", ""), meta["name"]))
        if current is None:
            continue
        component = str((meta.get("labels") or {}).get(LABEL_COMPONENT, ""))
        where = COMPONENTS.get(component, (component, "", ""))[2]
        before = _claims(current)
        for claim, (size, klass) in _claims(obj).items():
            if claim not in before:
                continue
            old_size, old_class = before[claim]
            if size < old_size:
                lines.append(
                    f"volume {claim} of {meta['name']} is {quantity.size(old_size)} and the "
                    f"spec makes it {quantity.size(size)}: volumes only grow; set "
                    f"{where or 'its size'} to at least {quantity.size(old_size)}"
                )
            if klass != old_class:
                lines.append(
                    f"volume {claim} of {meta['name']} has storageClassName "
                    f"{old_class or '(cluster default)'} and the spec asks for "
                    f"{klass or '(cluster default)'}: existing volumes cannot change class"
                )
    if not lines:
        return None
    return Refusal("VolumeChangeRefused", "; ".join(lines))
