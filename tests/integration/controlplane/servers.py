"""The PostgreSQL and Redis launchers live in ``tenantry_dev.services`` (``make dev``
uses them too); re-exported here for the tests that import them from this module."""

from tenantry_dev.services import Postgres, RedisServer, free_port

__all__ = ["Postgres", "RedisServer", "free_port"]
