"""Shared building blocks of the Tenantry custom resources.

Every model here is the single source of a CRD schema (see ``tenantry.api.crdgen``):
field docstrings become the ``description`` that ``kubectl explain`` prints, constraints
become OpenAPI bounds, and ``cel(...)`` rules become ``x-kubernetes-validations`` that the
API server evaluates. Field names are camelCase on the wire, snake_case in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from tenantry.api import quantity

# A DNS-1123 label (the form Kubernetes requires of namespace and service names).
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def cel(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: str | None = None,
    message_expression: str | None = None,
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; ``message`` must name the field and the fix.

    ``message_expression`` (CEL, may quote the value) is what the API server returns
    when it evaluates; ``message`` is the fallback and what the reference docs print."""
    entry = {"rule": rule, "message": message}
    if message_expression:
        entry["messageExpression"] = message_expression
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def cel_string(text: str) -> str:
    """``text`` as a CEL string literal (single-quoted)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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


@dataclass(frozen=True)
class _QuantityRules:
    """A quantity field: plain form and bounds checked by CEL in the CRD (messages that
    quote the value) and by pydantic (the control plane's and the operator's models)."""

    pattern: str
    low: str
    high: str
    what: str
    form: str
    example: str

    def field(self) -> Any:
        matches = f"self.matches({cel_string(self.pattern)})"
        low, high, what = self.low, self.high, self.what
        largest = f"{what} must be at most {high}, the largest plan's quota for a whole tenant"
        rules = [
            cel(
                matches,
                f"{self.form}, e.g. {self.example}",
                message_expression=f"{cel_string(self.form + '; got ')} + self",
            ),
            cel(
                f"!{matches} || quantity(self).compareTo(quantity({cel_string(low)})) >= 0",
                f"{what} must be at least {low}",
                message_expression=f"{cel_string(f'{what} must be at least {low}; got ')} + self",
            ),
            cel(
                f"!{matches} || quantity(self).compareTo(quantity({cel_string(high)})) <= 0",
                largest,
                message_expression=f"{cel_string(largest + '; got ')} + self",
            ),
        ]
        return Field(max_length=quantity.MAX_LENGTH, json_schema_extra=k8s_extra(validations=rules))

    def check(self, text: str) -> str:
        return quantity.check(
            text, pattern=self.pattern, low=self.low, high=self.high, what=self.what, form=self.form
        )


_CPU = _QuantityRules(
    pattern=quantity.CPU_PATTERN,
    low=quantity.CPU_MIN,
    high=quantity.CPU_MAX,
    what="cpu",
    form=quantity.CPU_FORMAT,
    example='"500m" or "2"',
)
_MEMORY = _QuantityRules(
    pattern=quantity.BYTES_PATTERN,
    low=quantity.MEMORY_MIN,
    high=quantity.MEMORY_MAX,
    what="memory",
    form=quantity.BYTES_FORMAT,
    example='"512Mi" or "8Gi"',
)
_STORAGE = _QuantityRules(
    pattern=quantity.BYTES_PATTERN,
    low=quantity.STORAGE_MIN,
    high=quantity.STORAGE_MAX,
    what="size",
    form=quantity.BYTES_FORMAT,
    example='"100Gi"',
)
CpuQuantity = Annotated[str, _CPU.field(), AfterValidator(_CPU.check)]
MemoryQuantity = Annotated[str, _MEMORY.field(), AfterValidator(_MEMORY.check)]
StorageQuantity = Annotated[str, _STORAGE.field(), AfterValidator(_STORAGE.check)]


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
    """CPU and memory amounts, as Kubernetes quantities in a plain form (no sign, no
    exponent), each at most what the largest plan's quota holds for a whole tenant."""

    cpu: CpuQuantity | None = None
    """CPU cores, e.g. "500m" or "2" (1m to 512)."""
    memory: MemoryQuantity | None = None
    """Memory, e.g. "512Mi" or "8Gi" (1Mi to 2Ti)."""


def _limit_rule(resource: str) -> dict[str, str]:
    req, lim = f"self.requests.{resource}", f"self.limits.{resource}"
    both = f"has(self.requests) && has(self.limits) && has({req}) && has({lim})"
    valid = f"isQuantity({req}) && isQuantity({lim})"
    return cel(
        f"!({both}) || !({valid}) || quantity({lim}).compareTo(quantity({req})) >= 0",
        f"limits.{resource} must be greater than or equal to requests.{resource}",
        field_path=f".limits.{resource}",
    )


class Resources(CRDModel):
    """Compute requests and limits for a component's containers. Unset values come from
    the plan; an unset limit is never below the request, nor an unset request above the
    limit (the plan's value gives way to the one set)."""

    model_config = ConfigDict(
        json_schema_extra=k8s_extra(validations=[_limit_rule("cpu"), _limit_rule("memory")])
    )

    requests: ResourceList | None = None
    """What the scheduler reserves for each container."""
    limits: ResourceList | None = None
    """The most each container may use; must not be below the requests."""

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        if self.requests is None or self.limits is None:
            return self
        for resource in ("cpu", "memory"):
            req = getattr(self.requests, resource)
            lim = getattr(self.limits, resource)
            if req is not None and lim is not None and quantity.parse(lim) < quantity.parse(req):
                raise ValueError(
                    f"limits.{resource} must be greater than or equal to requests.{resource}"
                )
        return self


# A StorageClass name (a DNS subdomain, as Kubernetes requires of object names).
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class Storage(CRDModel):
    """A persistent volume per pod. Whether a change would shrink a volume or move it to
    another class is checked on the whole spec, with the plan's defaults for unset
    fields (see TenantSpec)."""

    size: StorageQuantity | None = None
    """Volume size, e.g. "100Gi" (1Mi to 64Ti); may grow, never shrink. Unset means the
    plan's default."""
    storage_class_name: (
        Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)] | None
    ) = None
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
    "CpuQuantity",
    "MemoryQuantity",
    "ResourceList",
    "Resources",
    "Storage",
    "StorageQuantity",
    "cel",
    "cel_string",
    "empty_dict",
    "k8s_extra",
]
