"""Authentication: passwords, JWT access tokens, refresh-token families, OAuth PKCE."""
