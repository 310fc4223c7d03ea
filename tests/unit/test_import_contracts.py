"""The custom import-linter contract (`acyclic_modules`) finds cycles of modules, and the
contracts of `.importlinter` hold for the tree (`make layers` runs them too)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tenantry_dev.import_contracts import strongly_connected
from tests.support.wait import scaled

REPO = Path(__file__).resolve().parents[2]


def test_strongly_connected_finds_each_cycle_once() -> None:
    edges = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d"},  # d <-> e
        "f": {"a"},
        "g": set(),
    }
    groups = sorted(sorted(g) for g in strongly_connected(edges) if len(g) > 1)
    assert groups == [["a", "b", "c"], ["d", "e"]]
    singles = sorted(next(iter(g)) for g in strongly_connected(edges) if len(g) == 1)
    assert singles == ["f", "g"]


def test_a_long_chain_needs_no_recursion() -> None:
    edges = {f"m{i}": {f"m{i + 1}"} for i in range(5000)}
    edges["m5000"] = {"m0"}
    (group,) = list(strongly_connected(edges))
    assert len(group) == 5001


def test_the_contracts_hold() -> None:
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "lint-imports"), "--no-logo", "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
