"""The CRD's rules (CEL, run by the API server) and the pydantic models (run by the control
plane and the operator) give the same verdict on the values issue 18 is about.

Both are generated from one table per kind of value (tenantry/api: quantity, cron,
server_settings, dashboard), but CEL's RE2 and quantity library are not Python's; a
value one accepts and the other refuses is either a Tenant the control plane cannot
write, or one the operator refuses after the API server took it. Hypothesis draws
values around the grammar of each field; each goes to the API server as a dry run.

Where the models are deliberately stricter (what a pattern cannot say: a cron range
that ends before it starts, a time zone missing from the time zone database), the
model's refusal must say so; the operator then shows it as InvalidSpec.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tenantry.api import server_settings
from tenantry.api.dashboard import DashboardSpec
from tenantry.api.tenant import TenantSpec
from tests.support.kube import Kube

# Derandomized: CI runs the same 60 examples each time; the examples below pin the
# disagreements found while exploring (set derandomize=False locally to explore).
AGREE = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _api_accepts(kube: Kube, kind: str, spec: dict[str, Any]) -> tuple[bool, str]:
    obj = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "agree-probe"},
        "spec": spec,
    }
    res = kube.try_run("create", "--dry-run=server", "-f", "-", stdin=json.dumps(obj))
    return res.code == 0, res.stderr


def _model_accepts(kind: str, spec: dict[str, Any]) -> tuple[bool, str]:
    model = TenantSpec if kind == "Tenant" else DashboardSpec
    try:
        model.model_validate(spec)
    except ValidationError as err:
        return False, str(err)
    return True, ""


def _agree(kube: Kube, kind: str, spec: dict[str, Any], *, stricter: str = "") -> None:
    api, api_says = _api_accepts(kube, kind, spec)
    model, model_says = _model_accepts(kind, spec)
    event(f"API server {'accepts' if api else 'refuses'}")  # --hypothesis-show-statistics
    if api and not model and stricter and stricter in model_says:
        return  # a check only the model can make, by design
    assert api == model, (
        f"{json.dumps(spec)}: API server {api} ({api_says}); model {model} ({model_says})"
    )


# Quantity-like text: signs, exponents, suffixes, fractions, and a little noise.
QUANTITY = st.one_of(
    st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,3})?m?\Z"),  # plain cores and millicores
    st.from_regex(r"\A[0-9]{1,7}(\.[0-9]{1,2})?(Ki|Mi|Gi|Ti|Pi|k|M|G|T)?\Z"),  # bytes
    st.from_regex(
        r"\A[+-]?[0-9]{0,7}(\.[0-9]{0,7})?([eE][+-]?[0-9]{1,3}|[numkMGTPE]|[KMGTPE]i)?\Z"
    ),
    st.text(alphabet="0123456789.eEmkMGTi+- ", max_size=8),
)


@AGREE
@given(value=QUANTITY, where=st.sampled_from(["cpu", "memory", "size"]))
@example(value="2000000.0", where="memory")  # fraction of a whole number of bytes
@example(value="1.5Gi", where="size")
@example(value="1536Mi", where="memory")
def test_quantities(crds: Kube, value: str, where: str) -> None:
    # enterprise: its quota is the largest, so the plan caps add nothing here.
    spec: dict[str, Any] = {"plan": "enterprise", "clickhouse": {"shards": 1, "replicas": 1}}
    if where == "size":
        spec["clickhouse"]["storage"] = {"size": value}
    else:
        spec["clickhouse"]["resources"] = {"limits": {where: value}}
    _agree(crds, "Tenant", spec)


SETTING_VALUE = st.one_of(
    st.integers(-2, 2 * 1024**4 + 2).map(str),
    st.sampled_from(["0", "1", "1024", "3600", "3601", "86400", "100000", "100001"]),
    st.decimals(0, 2, places=4).map(str),
    st.from_regex(r"\A-?[0-9]{1,20}(\.[0-9]{0,5})?\Z"),
    st.text(alphabet="0123456789.-e xyz<>", max_size=8),
)


@AGREE
@given(
    key=st.one_of(
        st.sampled_from(sorted(server_settings.ALLOWED)),
        st.from_regex(r"\A[a-z][a-z_]{0,20}\Z"),
    ),
    value=SETTING_VALUE,
)
def test_settings(crds: Kube, key: str, value: str) -> None:
    _agree(crds, "Tenant", {"clickhouse": {"settings": {key: value}}})


def cron_field(low: int, high: int, names: list[str]) -> st.SearchStrategy[str]:
    """Elements mostly within one field's range, sometimes one past an end, a name, *, ?,
    a range or a step: most schedules are near valid, so both verdicts get explored."""
    inside = st.integers(low, high).map(str)
    value = st.one_of(
        inside, inside, inside, st.sampled_from([str(low - 1), str(high + 1), *names])
    )
    element = st.one_of(
        value,
        value,
        st.just("*"),
        st.just("?") if low > 0 or high == 6 else st.just("*"),  # ? only where it may be
        st.tuples(value, value).map("-".join),
        st.tuples(st.sampled_from(["*", str(low)]), st.integers(0, 61).map(str)).map("/".join),
    )
    return st.lists(element, min_size=1, max_size=2).map(",".join)


FIELDS = st.tuples(
    cron_field(0, 59, []),
    cron_field(0, 23, []),
    cron_field(1, 31, []),
    cron_field(1, 12, ["jan", "Dec", "foo"]),
    cron_field(0, 6, ["sun", "MON", "sat"]),
)
SCHEDULE = st.one_of(
    FIELDS.map(" ".join),
    FIELDS.map(" ".join),
    FIELDS.map(" ".join),
    FIELDS.map(lambda f: " ".join(f[:4])),  # a field short
    FIELDS.map(lambda f: " ".join((*f, "1"))),  # a field too many
    st.sampled_from(["@daily", "@Daily", "@hourly", "@every 1h", "TZ=UTC 0 3 * * *"]),
)


@AGREE
@given(schedule=SCHEDULE)
def test_schedules(crds: Kube, schedule: str) -> None:
    spec = {"backup": {"bucket": "backups", "schedule": schedule}}
    _agree(crds, "Tenant", spec, stricter="ends before it starts")


@AGREE
@given(
    zone=st.one_of(
        st.sampled_from(["Etc/UTC", "Europe/Paris", "Local", "UTC", "America/Argentina/Salta"]),
        st.from_regex(r"\A[A-Za-z][A-Za-z_]{0,8}(/[A-Za-z_+-]{1,8}){0,3}\Z"),
    )
)
def test_time_zones(crds: Kube, zone: str) -> None:
    spec = {"backup": {"bucket": "backups", "timeZone": zone}}
    _agree(crds, "Tenant", spec, stricter="is not a known IANA time zone")


@AGREE
@given(
    plan=st.sampled_from(["starter", "growth", "enterprise", None]),
    shards=st.one_of(st.none(), st.integers(1, 64)),
    replicas=st.one_of(st.none(), st.integers(1, 5)),
)
@example(plan="enterprise", shards=64, replicas=None)  # 64 x the preset's 3: 192 hosts
@example(plan="enterprise", shards=21, replicas=None)  # 63 hosts: fits
@example(plan="growth", shards=33, replicas=None)  # 66 hosts
@example(plan=None, shards=13, replicas=5)  # 65 hosts, both set
def test_host_cap_on_effective_values(
    crds: Kube, plan: str | None, shards: int | None, replicas: int | None
) -> None:
    """shards x replicas <= 64 with the plan's preset standing in for an unset value."""
    clickhouse = {k: v for k, v in (("shards", shards), ("replicas", replicas)) if v is not None}
    spec: dict[str, Any] = {"clickhouse": clickhouse}
    if plan is not None:
        spec["plan"] = plan
    _agree(crds, "Tenant", spec)


TIME = st.one_of(
    st.datetimes(
        min_value=dt.datetime(1969, 12, 31),
        max_value=dt.datetime(2106, 2, 8),
        timezones=st.timezones(),
    ).map(lambda d: d.isoformat(timespec="seconds")),
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})\Z"
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat(timespec="seconds")),
    st.tuples(st.integers(0, 99999), st.sampled_from("smhdw")).map(lambda t: f"now-{t[0]}{t[1]}"),
    st.tuples(st.integers(2500, 2700), st.just("w")).map(lambda t: f"now-{t[0]}{t[1]}"),
)


@AGREE
@given(value=TIME, field=st.sampled_from(["from", "to"]))
def test_dashboard_times(crds: Kube, value: str, field: str) -> None:
    spec = {
        "tenantRef": {"name": "acme"},
        "title": "t",
        "timeRange": {field: value},
        "panels": [{"id": "a", "title": "A", "sql": "SELECT 1"}],
    }
    _agree(crds, "Dashboard", spec)


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("Tenant", {"plan": "enterprise", "clickhouse": {"resources": {"limits": {"cpu": "1e3"}}}}),
        ("Tenant", {"clickhouse": {"settings": {"path": "/x"}}}),
        (
            "Dashboard",
            {
                "tenantRef": {"name": "a"},
                "title": "t",
                "timeRange": {"from": "0001-01-01T00:00:00Z"},
                "panels": [{"id": "a", "title": "A", "sql": "SELECT 1"}],
            },
        ),
    ],
)
def test_the_comparison_has_teeth(crds: Kube, kind: str, spec: dict[str, Any]) -> None:
    """Both refuse these; so a model that accepted them would fail the properties."""
    assert not _api_accepts(crds, kind, spec)[0]
    assert not _model_accepts(kind, spec)[0]
