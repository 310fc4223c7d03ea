"""The control plane's settings: a bad environment stops every command with one message
naming the variables (not a traceback naming fields)."""

from __future__ import annotations

import argparse

import pytest

from controlplane import cli
from controlplane.settings import Settings
from tenantry.settings import SettingsError, from_mapping


def test_a_bad_value_stops_the_command_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TENANTRY_CP_RATE_LIMIT_PER_IP", "0")
    assert cli.run(argparse.Namespace(cp_action="migrate")) == 2
    err = capsys.readouterr().err
    assert "TENANTRY_CP_RATE_LIMIT_PER_IP: Input should be greater than or equal to 1" in err


def test_rules_across_variables_and_bounds_are_named() -> None:
    with pytest.raises(SettingsError) as caught:
        from_mapping(Settings, {"TENANTRY_CP_TRUST_FORWARDED_FOR": "true"})
    assert "TENANTRY_CP_TRUST_FORWARDED_FOR needs TENANTRY_CP_TRUSTED_PROXIES" in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        from_mapping(Settings, {"TENANTRY_CP_ACCESS_TOKEN_TTL_SECONDS": "7200"})
    assert str(caught.value) == (
        "TENANTRY_CP_ACCESS_TOKEN_TTL_SECONDS: Input should be less than or equal to 3600 "
        "(got '7200')"
    )


def test_the_environment_reads_as_before() -> None:
    read = from_mapping(
        Settings,
        {
            "TENANTRY_CP_RATE_LIMIT_PANEL_QUERIES_PER_ORG": "50",
            "TENANTRY_CP_TRUSTED_PROXIES": '["10.0.0.0/8"]',
            "TENANTRY_CP_CORS_ORIGINS": '["https://app.example.com"]',
        },
    )
    assert read.rate_limit_panel_queries_per_org == 50
    assert [str(n) for n in read.trusted_proxies] == ["10.0.0.0/8"]
    assert read.cors_origins == ["https://app.example.com"]
