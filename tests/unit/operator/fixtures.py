"""The fixture tenants: the repository's example Tenants with a fixed uid.

Shared by the builder tests so the golden files, the invariant checks and the schema
validation all run over exactly the same objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from tenantry_operator import model as m
from tenantry_operator.normalize import tenant_model

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = {path.stem: path for path in sorted((REPO / "examples").glob("tenant-*.yaml"))}
UID = "6f1c3a52-0d2e-4c1b-9a57-3b2f7f0e8d41"
PLATFORM_NAMESPACES = ("tenantry-system",)


def body(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLES[name].read_text())
    doc["metadata"]["uid"] = UID
    doc["metadata"]["generation"] = 1
    return doc


def model(name: str) -> m.TenantModel:
    return tenant_model(body(name), platform_namespaces=PLATFORM_NAMESPACES)
