"""Write docs/settings.md from the settings models of the three components.

Every environment variable the operator, the control plane and the ingestion service
read is a field of a pydantic-settings model (the variable, its type, default, bounds
and docstring in one place), so this reference is generated from them and a unit test
fails when the committed file differs.

    python scripts/settings_docs.py            # rewrite docs/settings.md
    python scripts/settings_docs.py --check    # exit 1 when the file is stale (tests use this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "settings.md"

HEADER = """\
# Settings reference

Generated from the settings models by `python scripts/settings_docs.py` (a unit test
fails when this file is stale). Every value comes from the environment; an empty value
counts as unset. A value that is not acceptable stops the component at start with a
message naming the variable.
"""


def sections() -> list[tuple[str, str, list[type[BaseSettings]]]]:
    """(title, where the models live, models) of each component."""
    from tenantry_operator.backup_job import JobSettings as BackupSettings
    from tenantry_operator.builders.render import TemplateSettings
    from tenantry_operator.restore_job import RestoreSettings
    from tenantry_operator.settings import Settings as OperatorSettings

    from controlplane.billing.access import BillingSettings
    from controlplane.settings import Settings as ControlPlaneSettings
    from ingestion.settings import Settings as IngestionSettings

    return [
        (
            "Operator (`tenantry operator`)",
            "`operator/tenantry_operator/settings.py`, "
            "`operator/tenantry_operator/builders/render.py` (`TemplateSettings`)",
            [OperatorSettings, TemplateSettings],
        ),
        (
            "Control plane (`tenantry controlplane`)",
            "`controlplane/settings.py`, `controlplane/billing/access.py` (`BillingSettings`). "
            "Lists (`CORS_ORIGINS`, `TRUSTED_PROXIES`) are JSON",
            [ControlPlaneSettings, BillingSettings],
        ),
        (
            "Ingestion (`tenantry ingest`)",
            "`ingestion/settings.py`. The operator sets these for each tenant's ingestion "
            "pods (`tenant_templates/ingestion/`); API keys come from exactly one of "
            "`TENANTRY_CONTROLPLANE_URL` + `TENANTRY_INTERNAL_TOKEN` or `TENANTRY_INGEST_KEYS`",
            [IngestionSettings],
        ),
        (
            "Backup job (`tenantry backup`)",
            "`operator/tenantry_operator/backup_job.py`. The operator sets these in each "
            "tenant's backup CronJob (`tenant_templates/backup/`); the secrets come from "
            "Secrets `clickhouse-credentials` and `backup-s3-credentials`",
            [BackupSettings],
        ),
        (
            "Restore job (`tenantry restore`)",
            "`operator/tenantry_operator/restore_job.py`. The operator sets these in each "
            "restore Job (`tenant_templates/backup/restore-job.yaml.j2`); the hosts, "
            "ClickHouse and S3 settings are the backup job's, without the retention",
            [RestoreSettings],
        ),
    ]


def render() -> str:
    from tenantry.settings import reference

    parts = [HEADER]
    for title, where, models in sections():
        parts.append(f"\n## {title}\n\nModels: {where}.\n")
        for model in models:
            parts.append("\n" + reference(model))
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    text = render()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.check:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    elif not args.out.exists() or args.out.read_text() != text:
        print(f"{args.out} is stale: run make settings-docs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
