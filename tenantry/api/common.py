"""Shared building blocks of the Tenantry custom resources.

Every model here is the single source of a CRD schema (see ``tenantry.api.crdgen``):
field docstrings become the ``description`` that ``kubectl explain`` prints, constraints
become OpenAPI bounds, and ``cel(...)`` rules become ``x-kubernetes-validations`` that the
API server evaluates. Field names are camelCase on the wire, snake_case in Python.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# A Kubernetes resource quantity such as "500m", "4Gi" or "2".
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]

# A DNS-1123 label (the form Kubernetes requires of namespace and service names).
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def cel(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; ``message`` must name the field and the fix."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def k8s_extra(
    *, validations: list[dict[str, str]] | None = None, **extensions: Any
) -> dict[str, Any]:
    """``json_schema_extra`` carrying Kubernetes schema extensions for ``crdgen``."""
    extra: dict[str, Any] = {}
    if validations:
        extra["x-kubernetes-validations"] = validations
    for key, value in extensions.items():
        extra["x-kubernetes-" + key.replace("_", "-")] = value
    return extra


class CRDModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class ResourceList(CRDModel):
    """CPU and memory amounts, as Kubernetes quantities."""

    cpu: Quantity | None = None
    """CPU cores, e.g. "500m" or "2"."""
    memory: Quantity | None = None
    """Memory, e.g. "512Mi" or "8Gi"."""


class Resources(CRDModel):
    """Compute requests and limits for a component's containers. Unset values come from the plan."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "!has(self.requests) || !has(self.limits) || !has(self.requests.cpu) || "
                    "!has(self.limits.cpu) || "
                    "quantity(self.limits.cpu).compareTo(quantity(self.requests.cpu)) >= 0",
                    "limits.cpu must be greater than or equal to requests.cpu",
                    field_path=".limits.cpu",
                ),
                cel(
                    "!has(self.requests) || !has(self.limits) || !has(self.requests.memory) || "
                    "!has(self.limits.memory) || "
                    "quantity(self.limits.memory).compareTo(quantity(self.requests.memory)) >= 0",
                    "limits.memory must be greater than or equal to requests.memory",
                    field_path=".limits.memory",
                ),
            ]
        )
    )

    requests: ResourceList | None = None
    """What the scheduler reserves for each container."""
    limits: ResourceList | None = None
    """The most each container may use; must not be below the requests."""


class Storage(CRDModel):
    """A persistent volume per pod."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(
            validations=[
                cel(
                    "!has(oldSelf.size) || !has(self.size) || "
                    "quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",
                    "size cannot shrink: volumes can only be expanded; set it to at least the "
                    "current size",
                    field_path=".size",
                ),
                cel(
                    "has(self.storageClassName) == has(oldSelf.storageClassName) && "
                    "(!has(self.storageClassName) || "
                    "self.storageClassName == oldSelf.storageClassName)",
                    "storageClassName is immutable once set: existing volumes cannot move to "
                    "another class",
                    field_path=".storageClassName",
                ),
            ]
        )
    )

    size: Quantity | None = None
    """Volume size, e.g. "100Gi"; may grow, never shrink. Unset means the plan's default."""
    storage_class_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """StorageClass of the volumes; unset means the cluster default. Immutable."""


class Condition(CRDModel):
    """A standard Kubernetes condition."""

    type: str
    """Condition type, e.g. Ready, Progressing, Degraded, ClickHouseReady."""
    status: str
    """"True", "False" or "Unknown"."""
    reason: str = ""
    """Machine-readable CamelCase reason."""
    message: str = ""
    """Human-readable detail."""
    observed_generation: int | None = None
    """The .metadata.generation this condition was computed from."""
    last_transition_time: str | None = None
    """When status last changed (RFC 3339)."""


def empty_dict() -> dict[str, str]:
    return {}


__all__ = [
    "DNS_LABEL_PATTERN",
    "CRDModel",
    "Condition",
    "Quantity",
    "ResourceList",
    "Resources",
    "Storage",
    "cel",
    "empty_dict",
    "k8s_extra",
]
