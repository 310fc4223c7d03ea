"""The audit trail: append-only, hash-chained per organisation, verifiable offline."""
