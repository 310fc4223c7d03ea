"""Golden YAML per fixture tenant: any change to what the builders render shows up as a
reviewable diff. Regenerate with ``UPDATE_GOLDEN=1 pytest tests/unit/operator``."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from tenantry_operator import builders

from tests.unit.operator import fixtures

GOLDEN = Path(__file__).resolve().parent / "golden"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (XML, scripts) as block literals, so diffs stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_golden(name: str) -> None:
    rendered = dump(builders.build(fixtures.model(name)))
    path = GOLDEN / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1"
    expected = path.read_text()
    if rendered != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                fromfile=str(path),
                tofile="rendered",
                n=2,
            )
        )
        pytest.fail(f"rendered objects differ from {path.name} (UPDATE_GOLDEN=1):\n{diff}")


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_golden_round_trips(name: str) -> None:
    """The golden file is the objects themselves, not merely similar text."""
    objects = builders.build(fixtures.model(name))
    assert list(yaml.safe_load_all(dump(objects))) == objects
