"""Dashboard custom resources of one organisation.

Dashboards follow the exact naming and labelling rules of tenants
(``<org slug>-<name>``, org-id label), so this module re-exports those functions
rather than copying them.
"""

from __future__ import annotations

from controlplane.tenants.repository import create, delete, get, list_all, replace_spec

__all__ = ["create", "delete", "get", "list_all", "replace_spec"]
