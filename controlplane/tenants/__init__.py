"""Tenants of an organisation, stored as Tenant custom resources."""
