"""docs/settings.md is generated from the settings models and must not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import settings_docs

REPO = Path(__file__).resolve().parents[2]


def test_settings_reference_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    code = settings_docs.main(["--check"])
    assert code == 0, capsys.readouterr().err + "\n(regenerate: make settings-docs)"


def test_check_fails_on_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "settings.md"
    assert settings_docs.main(["--check", "--out", str(stale)]) == 1  # missing
    assert settings_docs.main(["--out", str(stale)]) == 0
    assert settings_docs.main(["--check", "--out", str(stale)]) == 0
    stale.write_text(stale.read_text().replace("`TENANTRY_RESYNC_SECONDS` | number | `300.0`", "x"))
    assert settings_docs.main(["--check", "--out", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err


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
