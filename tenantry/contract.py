"""Names the operator, the control plane and the ingestion service must agree on.

Each is defined here once and imported by every component that uses it; a copy in a
component is how they drifted before (the ingestion service once derived the tenant
database as `<tenant>` while the operator created `t_<tenant>`, and only a test-only
URL override hid it). This module is the shared package's bottom layer: it imports
nothing of the project.
"""

from __future__ import annotations


def tenant_namespace(tenant: str) -> str:
    """The namespace that holds a Tenant's stack: `tenant-<Tenant name>`."""
    return f"tenant-{tenant}"


def tenant_database(tenant: str) -> str:
    """The Tenant's ClickHouse database: `t_<Tenant name>` with '-' as '_'.

    Tenant names are DNS labels (lowercase letters, digits, '-'), so the result is a
    plain identifier that never starts with a digit and never collides with another
    tenant's (one engine may host several tenants in local runs)."""
    return "t_" + tenant.replace("-", "_")
