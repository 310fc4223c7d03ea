"""What the schemathesis fuzz tests share: the operations of an OpenAPI document
(which must itself be valid) and the hypothesis settings they run under."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.core.result import Ok


def operations(document: dict[str, Any]) -> list[Any]:
    """Every operation of ``document``; fails when the document is not a valid schema."""
    schema = schemathesis.openapi.from_dict(document)
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        found.append(result.ok())
    return found


def cases(max_examples: int) -> settings:
    """The same ``max_examples`` cases every run (derandomized, no example database), so
    a test's assertions on the statuses it saw cannot flake with the random draw; no
    shrinking (it reports rather than spending minutes minimising) and no health checks
    (the generated requests are slow by nature: each is a real HTTP call)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
