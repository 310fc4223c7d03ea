"""The dev harness finds the repository it runs from (it moved a level up once, and
its paths kept pointing one folder too high: `make dev` applied CRDs from outside the
repository)."""

from __future__ import annotations

from pathlib import Path

from tenantry_dev import tools

ROOT = Path(__file__).resolve().parents[2]


def test_the_dev_harness_paths_are_the_repository_root() -> None:
    assert tools.REPO == ROOT
    assert (tools.REPO / "crds" / "tenantry.io_tenants.yaml").is_file()  # install_crds
    assert (tools.REPO / "scripts" / "tools.sh").is_file()
