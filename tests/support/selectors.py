"""Kubernetes label selectors, evaluated as the API server does, for the shapes the
project renders (``matchLabels``; ``matchExpressions`` with ``In``). Any other shape is
an error, so a selector nobody taught the tests to read cannot pass unread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    assert not unknown, f"selector shape not understood: {unknown}"
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True
