"""Per-tenant API keys for ingestion: shown once, stored hashed."""
