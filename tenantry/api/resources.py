"""The custom resources as lightkube resource classes, with their plurals: one
definition for the operator and the control plane (and kopf's handlers)."""

from __future__ import annotations

from lightkube.generic_resource import create_global_resource

from tenantry.api import GROUP, VERSION

TENANTS = "tenants"
DASHBOARDS = "dashboards"
RESTORES = "restores"
TenantResource = create_global_resource(GROUP, VERSION, "Tenant", TENANTS)
DashboardResource = create_global_resource(GROUP, VERSION, "Dashboard", DASHBOARDS)
RestoreResource = create_global_resource(GROUP, VERSION, "Restore", RESTORES)
