"""The operator's settings: the environment variables, their defaults and their errors."""

from __future__ import annotations

import pytest
from tenantry_operator.builders import render
from tenantry_operator.normalize import Images
from tenantry_operator.settings import Settings

from tenantry.settings import SettingsError, env_name


def test_defaults_suit_a_local_run() -> None:
    s = Settings.from_env({})
    assert s.images == Images()
    assert s.platform_namespaces == ("tenantry-system",)
    assert s.monitoring_namespaces == ()  # no scrape rule unless asked
    assert (s.resync_seconds, s.busy_recheck_seconds, s.retry_max_seconds) == (300, 30, 15)
    assert (s.max_shards_in_flight, s.max_concurrent_reconciles, s.delete_retries) == (2, 8, 5)
    assert (s.plan_recheck_seconds, s.usage_interval_seconds) == (60, 300)
    assert s.s3 is None
    assert s.clickhouse_override is s.controlplane_url is s.internal_token is None
    assert s.liveness == "http://0.0.0.0:8080/healthz"


def test_the_environment_is_read() -> None:
    s = Settings.from_env(
        {
            "TENANTRY_CLICKHOUSE_IMAGE": "mirror/clickhouse",
            "TENANTRY_PLATFORM_NAMESPACES": " tenantry-system, monitoring ,,",
            "TENANTRY_MONITORING_NAMESPACES": "monitoring, observability",
            "TENANTRY_RESYNC_SECONDS": "120",
            "TENANTRY_MAX_SHARDS_IN_FLIGHT": "3",
            "TENANTRY_S3_ENDPOINT": "http://127.0.0.1:8333",
            "TENANTRY_S3_ACCESS_KEY_ID": "id",
            "TENANTRY_S3_SECRET_ACCESS_KEY": "very-secret",
            "TENANTRY_CLICKHOUSE_URL_OVERRIDE": "",  # empty: unset
            "TENANTRY_CONTROLPLANE_URL": "http://cp:8000",
            "TENANTRY_INTERNAL_TOKEN": "token-value",
            "TENANTRY_USAGE_INTERVAL_SECONDS": "30",
        }
    )
    assert s.images == Images(clickhouse="mirror/clickhouse")
    assert s.platform_namespaces == ("tenantry-system", "monitoring")
    assert s.monitoring_namespaces == ("monitoring", "observability")
    assert (s.resync_seconds, s.max_shards_in_flight, s.usage_interval_seconds) == (120, 3, 30)
    assert s.s3 is not None
    assert (s.s3.endpoint, s.s3.access_key_id, s.s3.secret_access_key, s.s3.region) == (
        "http://127.0.0.1:8333",
        "id",
        "very-secret",
        "us-east-1",
    )
    assert s.clickhouse_override is None
    assert (s.controlplane_url, s.internal_token) == ("http://cp:8000", "token-value")
    assert "very-secret" not in repr(s)
    assert "token-value" not in repr(s)


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_BUSY_RECHECK_SECONDS", "7")
    assert Settings.from_env().busy_recheck_seconds == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TENANTRY_RESYNC_SECONDS": "soon"}, "TENANTRY_RESYNC_SECONDS: .*number"),
        ({"TENANTRY_RESYNC_SECONDS": "0"}, "TENANTRY_RESYNC_SECONDS: .*greater than 0"),
        ({"TENANTRY_MAX_SHARDS_IN_FLIGHT": "0"}, "TENANTRY_MAX_SHARDS_IN_FLIGHT: .*1"),
        ({"TENANTRY_MAX_CONCURRENT_RECONCILES": "2.5"}, "TENANTRY_MAX_CONCURRENT_RECONCILES"),
        ({"TENANTRY_DELETE_RETRIES": "-1"}, "TENANTRY_DELETE_RETRIES"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_the_secret_value_is_not_echoed_in_errors() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"TENANTRY_RESYNC_SECONDS": "x", "TENANTRY_INTERNAL_TOKEN": "tok"})
    assert "tok" not in str(caught.value)


def test_fields_take_their_names_in_code() -> None:
    """Tests and callers build settings by field name; the env names stay the aliases."""
    s = Settings(busy_recheck_seconds=5, retry_max_seconds=60)
    assert (s.busy_recheck_seconds, s.retry_max_seconds) == (5, 60)
    assert env_name(Settings, "busy_recheck_seconds") == "TENANTRY_BUSY_RECHECK_SECONDS"


def test_templates_dir_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(render.TEMPLATES_ENV, raising=False)
    assert render.TemplateSettings().templates_dir is None
    monkeypatch.setenv(render.TEMPLATES_ENV, "/nowhere/templates")
    with pytest.raises(FileNotFoundError, match="TENANTRY_TEMPLATES_DIR"):
        render.templates_dir()
