"""docs/settings.md is generated from the settings models and must not go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts import settings_docs
from tests.support.wait import scaled

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "settings_docs.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(120),
    )


def test_settings_reference_is_up_to_date() -> None:
    proc = _run("--check")
    assert proc.returncode == 0, proc.stderr + "\n(regenerate: python scripts/settings_docs.py)"


def test_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "settings.md"
    text = (REPO / "docs" / "settings.md").read_text()
    stale.write_text(text.replace("`TENANTRY_RESYNC_SECONDS` | number | `300.0`", "x"))
    proc = _run("--check", "--out", str(stale))
    assert proc.returncode == 1
    assert "is stale" in proc.stderr


def test_every_setting_is_described() -> None:
    """A field without a docstring would be an undocumented variable."""
    for _title, _where, models in settings_docs.sections():
        for model in models:
            for name, field in model.model_fields.items():
                assert field.description, f"{model.__module__}.{model.__name__}.{name}"


def test_reference_rows_say_variable_type_default_bounds_and_meaning() -> None:
    text = (REPO / "docs" / "settings.md").read_text()
    rows = {
        line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")
    }
    assert rows["`TENANTRY_RESYNC_SECONDS`"].startswith(
        "| `TENANTRY_RESYNC_SECONDS` | number | `300.0` | > 0 | Each Tenant is reconciled"
    )
    assert "| comma-separated list | `tenantry-system` |" in rows["`TENANTRY_PLATFORM_NAMESPACES`"]
    assert "| string | **required** |" in rows["`TENANTRY_TENANT`"]
    assert "| integer | `500` | ≥ 1 |" in rows["`TENANTRY_INGEST_RATE_LIMIT_PER_KEY`"]
    assert "| JSON list | (none) |" in rows["`TENANTRY_CP_TRUSTED_PROXIES`"]
    assert "| string (secret) | (unset) |" in rows["`TENANTRY_CP_SMTP_PASSWORD`"]
    assert "| string (secret) |" in rows["`TENANTRY_INTERNAL_TOKEN`"]
    assert "`TENANTRY_CP_RATE_LIMIT_PANEL_QUERIES_PER_ORG`" in rows
    assert "`TENANTRY_TEMPLATES_DIR`" in rows
