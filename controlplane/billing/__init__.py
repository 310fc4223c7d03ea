"""Billing: plans, subscriptions, metered usage and invoices."""
