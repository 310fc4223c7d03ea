"""The Tenantry custom resources: group tenantry.io, version v1alpha1."""

GROUP = "tenantry.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
