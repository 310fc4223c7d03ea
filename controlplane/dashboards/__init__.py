"""Dashboards of an organisation, stored as Dashboard custom resources."""
