"""What the models refuse beyond the shape of a field: quantities a plan can hold, ClickHouse
settings the operator does not own, cron schedules Kubernetes accepts, times a ClickHouse
DateTime holds. The CRD's CEL rules say the same (tests/e2e/test_crds.py, and
tests/e2e/test_admission_agrees.py compares both verdicts on generated values); these run
the pydantic side, which the control plane and the operator use."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tenantry.api import cron, quantity, server_settings
from tenantry.api.common import Resources, Storage
from tenantry.api.dashboard import EARLIEST, LATEST, TimeRange, check_time
from tenantry.api.plans import PRESETS, Plan
from tenantry.api.tenant import TenantSpec


def _refused(model: Any, data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    return str(err.value)


# -- quantities ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("100G", Fraction(10**11)),
        ("1e3", Fraction(1000)),
        ("1e300", Fraction(10) ** 300),
        ("-1", Fraction(-1)),
        ("+.5", Fraction(1, 2)),
        ("2Ei", Fraction(2 * 2**60)),
    ],
)
def test_parse_is_exact_for_every_form_the_api_server_knows(text: str, value: Fraction) -> None:
    assert quantity.parse(text) == value


@pytest.mark.parametrize("text", ["", "lots", "1.2.3", "1Kb", "e3", "1e", "--1"])
def test_parse_refuses_what_is_no_quantity(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity.parse(text)


@given(st.integers(min_value=1, max_value=10**6))
def test_cores_and_size_print_what_parse_reads_back(milli: int) -> None:
    cpu = Fraction(milli, 1000)
    assert quantity.parse(quantity.cores(cpu)) == cpu
    size = Fraction(milli * 1024**2)
    assert quantity.parse(quantity.size(size)) == size


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        ({"requests": {"cpu": "1e300"}}, "requests.cpu", "without sign or exponent"),
        ({"limits": {"cpu": "-1"}}, "limits.cpu", "without sign or exponent"),
        ({"requests": {"cpu": "0"}}, "requests.cpu", "cpu must be at least 1m"),
        ({"requests": {"cpu": "0m"}}, "requests.cpu", "cpu must be at least 1m"),
        ({"limits": {"cpu": "513"}}, "limits.cpu", "cpu must be at most 512"),
        ({"requests": {"cpu": "2Gi"}}, "requests.cpu", "must be a CPU amount"),
        ({"requests": {"memory": "1e12"}}, "requests.memory", "fraction, sign, exponent"),
        ({"requests": {"memory": "128m"}}, "requests.memory", "the milli suffix m"),
        ({"limits": {"memory": "0Mi"}}, "limits.memory", "memory must be at least 1Mi"),
        ({"limits": {"memory": "1048576.5"}}, "limits.memory", "without fraction"),
        # a whole number of bytes, but the API server's isInteger() refuses any fraction
        ({"limits": {"memory": "1.5Gi"}}, "limits.memory", "without fraction"),
        ({"limits": {"memory": "2000000.0"}}, "limits.memory", "without fraction"),
        ({"limits": {"memory": "3Ti"}}, "limits.memory", "memory must be at most 2Ti"),
        (
            {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
            "",
            "limits.cpu must be greater than or equal to requests.cpu",
        ),
    ],
)
def test_resources_refuse_unusable_quantities(
    resources: dict[str, Any], field: str, words: str
) -> None:
    text = _refused(Resources, resources)
    assert field in text
    assert words in text


@pytest.mark.parametrize(
    ("size", "words"),
    [
        ("-10Gi", "fraction, sign, exponent"),
        ("0", "size must be at least 1Mi"),
        ("1e15", "fraction, sign, exponent"),
        ("65Ti", "size must be at most 64Ti"),
        ("1.5Ti", "without fraction"),
    ],
)
def test_storage_size_refused(size: str, words: str) -> None:
    assert words in _refused(Storage, {"size": size})


def test_storage_class_must_be_a_name() -> None:
    assert "storageClassName" in _refused(Storage, {"storageClassName": "Fast_SSD"})
    assert Storage.model_validate({"storageClassName": "fast.ssd-1"}).storage_class_name


def test_the_absolute_bounds_are_the_largest_plan_quota() -> None:
    """A single value above every plan's whole-tenant quota can never be scheduled; the
    bounds must follow the plans' table, not drift from it."""
    largest = max(PRESETS.values(), key=lambda p: quantity.parse(p.quota_cpu))
    assert quantity.parse(quantity.CPU_MAX) == quantity.parse(largest.quota_cpu)
    assert quantity.parse(quantity.MEMORY_MAX) == max(
        quantity.parse(p.quota_memory) for p in PRESETS.values()
    )
    assert quantity.parse(quantity.STORAGE_MAX) == max(
        quantity.parse(p.quota_storage) for p in PRESETS.values()
    )


def test_plan_defaults_are_valid_values() -> None:
    """Every size a plan fills in passes the checks an explicit value must pass."""
    for plan in Plan:
        preset = PRESETS[plan]
        for size in (preset.clickhouse, preset.keeper, preset.redis, preset.ingestion):
            Resources.model_validate(
                {
                    "requests": {"cpu": size.cpu_request, "memory": size.memory_request},
                    "limits": {"cpu": size.cpu_limit, "memory": size.memory_limit},
                }
            )
        for size in (preset.clickhouse, preset.keeper, preset.redis):
            Storage.model_validate({"size": size.storage})


# -- ClickHouse settings ----------------------------------------------------------------
OWNED_KEYS = [
    "path",
    "tmp_path",
    "user_files_path",
    "format_schema_path",
    "storage_configuration",
    "listen_host",
    "http_port",
    "tcp_port",
    "interserver_http_port",
    "interserver_http_host",
    "users",
    "users_config",
    "user_directories",
    "access_control_path",
    "zookeeper",
    "keeper_server",
    "remote_servers",
    "macros",
    "include_from",
    "logger",
]


@pytest.mark.parametrize("key", OWNED_KEYS)
def test_settings_the_operator_owns_are_refused(key: str) -> None:
    text = _refused(TenantSpec, {"clickhouse": {"settings": {key: "/tmp/x"}}})
    assert f"setting {key} cannot be set" in text


def test_no_allowed_setting_is_one_the_operator_owns() -> None:
    owned = ["path", "listen", "port", "user", "storage", "keeper", "zookeeper", "cluster"]
    owned += ["remote", "macro", "include", "interserver", "ssl", "logger", "dictionar"]
    for name in server_settings.ALLOWED:
        assert not any(word in name for word in owned), name


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("max_concurrent_queries", "lots", "a whole number from 0 to 100000"),
        ("max_connections", "1000000", "a whole number from 1 to 100000"),
        ("keep_alive_timeout", "-1", "a whole number from 1 to 3600 seconds"),
        ("mark_cache_size", "1e9", "a whole number from 0 to"),
        ("max_server_memory_usage_to_ram_ratio", "1.5", "a ratio above 0, at most 1"),
        ("cache_size_to_ram_max_ratio", "0", "a ratio above 0, at most 1"),
        ("display_name", "<b>x</b>", "up to 64 letters"),
    ],
)
def test_setting_values_are_typed(key: str, value: str, words: str) -> None:
    text = _refused(TenantSpec, {"clickhouse": {"settings": {key: value}}})
    assert f"setting {key} must be" in text
    assert words in text


def test_allowed_settings_pass() -> None:
    spec = TenantSpec.model_validate(
        {
            "clickhouse": {
                "settings": {
                    "max_concurrent_queries": "0",
                    "max_server_memory_usage_to_ram_ratio": "0.8",
                    "max_partition_size_to_drop": "0",
                    "display_name": "acme prod-1",
                }
            }
        }
    )
    assert len(spec.clickhouse.settings) == 4


def test_settings_description_lists_every_allowed_setting() -> None:
    description = TenantSpec.model_json_schema()["$defs"]["ClickHouseSpec"]["properties"][
        "settings"
    ]["description"]
    for name in server_settings.ALLOWED:
        assert name in description
    assert "path" in description
    assert "Any other key is refused" in description


# -- cron schedules and time zones --------------------------------------------------------
@pytest.mark.parametrize(
    "schedule",
    [
        "0 3 * * *",
        "@daily",
        "*/15 * * * MON-FRI",
        "0 0 1 jan,jul ?",
        "5/10 0-23/2 1-31 1-12 0-6",
        "0  3\t* * *",
    ],
)
def test_schedules_kubernetes_accepts_pass(schedule: str) -> None:
    assert cron.check(schedule) == schedule


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("60 3 * * *", "schedule must be five cron fields"),
        ("0 24 * * *", "schedule must be five cron fields"),
        ("0 3 0 * *", "schedule must be five cron fields"),
        ("0 3 * 13 *", "schedule must be five cron fields"),
        ("0 3 * * 7", "schedule must be five cron fields"),
        ("*/0 * * * *", "schedule must be five cron fields"),
        ("0 3 * *", "schedule must be five cron fields"),
        ("0 0 3 * * *", "schedule must be five cron fields"),
        ("@Daily", "schedule must be five cron fields"),
        (" 0 3 * * *", "schedule must be five cron fields"),
        ("30-10 * * * *", "minute range '30-10' ends before it starts"),
        ("0 0 * * fri-mon", "day of week range 'fri-mon' ends before it starts"),
        ("CRON_TZ=Europe/Paris 0 3 * *", "cannot carry a time zone"),
        ("TZ=UTC 0 3 * * *", "cannot carry a time zone"),
    ],
)
def test_schedules_kubernetes_refuses_are_refused(schedule: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        cron.check(schedule)
    text = _refused(TenantSpec, {"backup": {"bucket": "backups", "schedule": schedule}})
    assert "backup.schedule" in text


@pytest.mark.parametrize("zone", ["Local", "local", "Europe Paris", "Mars/Olympus"])
def test_time_zone_refused(zone: str) -> None:
    text = _refused(TenantSpec, {"backup": {"bucket": "backups", "timeZone": zone}})
    assert "backup.timeZone" in text


def test_time_zone_accepted() -> None:
    spec = TenantSpec.model_validate({"backup": {"bucket": "backups", "timeZone": "Europe/Paris"}})
    assert spec.backup is not None
    assert spec.backup.time_zone == "Europe/Paris"


# -- Dashboard times ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "2106-02-07T06:28:16Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00+24:00",
        "now-99999w",
        "now-20000d",
    ],
)
def test_times_past_the_edges_are_refused(text: str) -> None:
    for field in ("from", "to"):
        with pytest.raises(ValidationError) as err:
            TimeRange.model_validate({field: text})
        assert [e["loc"] for e in err.value.errors()] == [(field,)]


@pytest.mark.parametrize(
    "text",
    ["now", "now-50w", "now-18250d", "1970-01-01T00:00:00Z", "2106-02-07T06:28:15Z"],
)
def test_times_at_the_edges_pass(text: str) -> None:
    assert check_time(text) == text
    assert TimeRange.model_validate({"from": text}).from_ == text


@given(st.datetimes(timezones=st.timezones()))
def test_any_datetime_is_either_accepted_or_refused_with_a_value_error(
    when: Any,
) -> None:
    """The class of the crash: no calendar value makes the check raise anything else,
    and what it accepts a ClickHouse DateTime holds."""
    text = when.isoformat()
    try:
        check_time(text)
    except ValueError:
        return
    assert EARLIEST <= when.astimezone(dt.UTC) <= LATEST
