"""Event rows for the ClickHouse integration tests (deterministic, no randomness)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def events(
    count: int, *, start: dt.datetime | None = None, names: tuple[str, ...] = ("signup", "view")
) -> list[dict[str, Any]]:
    """`count` events, one a minute back from `start`, names and users cycling."""
    first = start or NOW
    return [
        {
            "event_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{first.isoformat()}/{i}"),
            "timestamp": first - dt.timedelta(minutes=i),
            "event": names[i % len(names)],
            "user_id": f"user-{i % 7}",
            "properties": json.dumps({"plan": "pro" if i % 2 else "free", "n": i}),
            "batch_id": "fixture",
        }
        for i in range(count)
    ]
