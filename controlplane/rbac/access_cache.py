"""Members' access to their organisations, kept in memory between requests.

Every request in an organisation needs the caller's membership, role and grants: one
PostgreSQL transaction per request just to learn what rarely changes (measured: a
sixth of the CPU of an authorised read). So each process keeps what it read, in an
``InvalidatedCache`` (``controlplane/invalidated_cache.py``: its rules on staleness,
reads in flight, and being off while the transport is down) fed by PostgreSQL:

- Migration 0102 makes PostgreSQL announce every change to ``orgs``, ``memberships``
  and ``org_roles`` with ``NOTIFY tenantry_access, '<org id>'``. Notifications are sent
  when the changing transaction commits, to every listening process.
- The cache listens on a connection of its own (``listener``) and forgets the
  organisation's entries (grouped by organisation id) when told; a payload that is not
  an organisation id forgets everything. Only members are cached; a refused caller is
  read every time.

The process that served a change also forgets the organisation right after its commit
(deps.py), so a change is seen by its own next request at once, and by every other
process once the notification arrives, milliseconds later.

While PostgreSQL cannot be reached, a read by a member whose access was confirmed
within ``max_age`` (60 s) is still served from what was confirmed; writes and anyone
else get a 503 (the bounded-staleness policy of ``outages.py``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

from controlplane.invalidated_cache import InvalidatedCache, PostgresNotifications

CHANNEL = "tenantry_access"
log = logging.getLogger("tenantry.controlplane.access")
T = TypeVar("T")


def _org_of(payload: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(payload)
    except ValueError:  # not ours to interpret: forget everything
        return None


class AccessCache(InvalidatedCache[T]):
    """(org id, user id) -> what a member may do, invalidated by PostgreSQL."""

    def __init__(
        self,
        *,
        max_age: float = 60.0,
        max_size: int = 50_000,
        first_delay: float = 0.1,
        on_stale: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            max_age=max_age,
            max_size=max_size,
            first_delay=first_delay,
            max_delay=5.0,
            group_of=_org_of,
            log=log,
            what="access cache",
            on_stale=on_stale,
        )


def listener(database_url: str, *, ping_every: float = 10.0) -> PostgresNotifications:
    """The transport of ``AccessCache.run``: ``LISTEN tenantry_access``."""
    return PostgresNotifications(database_url, CHANNEL, ping_every=ping_every)
