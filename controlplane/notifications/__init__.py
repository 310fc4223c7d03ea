"""Notifications of an organisation: today, the alerts Prometheus raises about its
tenants (through Alertmanager's webhook, ``POST /internal/v1/alerts``)."""
