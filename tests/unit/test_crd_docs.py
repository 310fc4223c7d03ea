"""docs/crd-reference.md is generated from crds/ and must not go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.wait import scaled

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "crd_docs.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(120),
    )


def test_crd_reference_is_up_to_date() -> None:
    proc = _run("--check")
    assert proc.returncode == 0, proc.stderr + "\n(regenerate: python scripts/crd_docs.py)"


def test_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "crd-reference.md"
    stale.write_text((REPO / "docs" / "crd-reference.md").read_text().replace("≤ 5", "≤ 6"))
    proc = _run("--check", "--out", str(stale))
    assert proc.returncode == 1
    assert "is stale" in proc.stderr


def test_reference_documents_fields_defaults_bounds_and_rules() -> None:
    text = (REPO / "docs" / "crd-reference.md").read_text()
    row = next(
        line for line in text.splitlines() if line.startswith("| `spec.clickhouse.replicas`")
    )
    assert "integer" in row
    assert "≥ 1; ≤ 5" in row
    assert "Replicas per shard" in row
    row = next(line for line in text.splitlines() if line.startswith("| `spec.plan`"))
    assert "`starter`" in row
    assert "one of `starter`, `growth`, `enterprise`" in row
    assert "set either ingestion.replicas or ingestion.autoscaling.enabled, not both" in text
    assert "## Dashboard (`tenantry.io/v1alpha1`)" in text
    assert "`spec.panels[].sql`" in text
