"""Every ClickHouse config tree the builders render starts the ClickHouse engine, and
the engine reads from it what the model says (issue 14, item 2).

The tree is laid out as the StatefulSet mounts it (``tests.support.chconfig``) and
loaded by chDB in a child process with the container's env (the passwords that
users.xml reads ``from_env``). Checked against the model: ``system.macros``,
``system.clusters``, ``system.users``, ``system.grants``, the settings profiles and
their constraints, and the quotas. Over the example Tenants (the golden fixtures) and
over random valid Tenants (hypothesis, the spec strategy of the CR fuzz test).
"""

from __future__ import annotations

import base64
import dataclasses
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenantry_operator import builders, secrets
from tenantry_operator import model as m
from tenantry_operator.builders import clickhouse as ch_builder
from tenantry_operator.builders import keeper as keeper_builder
from tenantry_operator.model import LABEL_COMPONENT
from tenantry_operator.normalize import tenant_model

from tenantry import contract
from tenantry.api import server_settings
from tenantry.api.plans import Plan
from tests.support import chconfig
from tests.unit.operator import fixtures

ENV = {
    "CLICKHOUSE_ADMIN_PASSWORD": "admin-secret-1",
    "CLICKHOUSE_WRITER_PASSWORD": "writer-secret-2",
    "CLICKHOUSE_READER_PASSWORD": "reader-secret-3",
    "CLICKHOUSE_INTERSERVER_SECRET": "interserver-secret-4",
}
ACCESS_QUERIES = (
    "SELECT name, storage, auth_type FROM system.users ORDER BY name",
    "SELECT user_name, access_type, database, table, column, is_partial_revoke, grant_option"
    " FROM system.grants WHERE user_name IN ('writer', 'reader') ORDER BY ALL",
    "SELECT profile_name, setting_name, value, min, max FROM system.settings_profile_elements"
    " WHERE profile_name IN ('writer', 'reader') ORDER BY ALL",
    "SELECT user_name, inherit_profile FROM system.settings_profile_elements"
    " WHERE user_name IS NOT NULL ORDER BY ALL",
    "SELECT quota_name, duration, max_queries, max_execution_time FROM system.quota_limits"
    " ORDER BY ALL",
    "SELECT name, apply_to_list FROM system.quotas ORDER BY name",
    "SHOW GRANTS FOR admin",
)
HOST_QUERIES = (
    "SELECT macro, substitution FROM system.macros ORDER BY macro",
    "SELECT cluster, shard_num, replica_num, host_name, port, user FROM system.clusters"
    " ORDER BY ALL",
)


# -- what the model says ----------------------------------------------------------------


def expected_macros(model: m.TenantModel, host: m.Host) -> list[list[Any]]:
    return [["cluster", model.cluster_name], ["replica", host.name], ["shard", str(host.shard)]]


def expected_clusters(model: m.TenantModel) -> list[list[Any]]:
    ch = model.clickhouse
    return [
        [
            model.cluster_name,
            shard + 1,
            replica + 1,
            f"ch-s{shard}-r{replica}.{model.namespace}.svc.cluster.local",
            9000,
            "admin",
        ]
        for shard in range(ch.shards)
        for replica in range(ch.replicas)
    ]


def expected_grants(model: m.TenantModel) -> list[list[Any]]:
    tables = ["events", "events_local"] if model.clickhouse.clustered else ["events"]
    rows = [["reader", "SELECT", model.database, None, None, 0, 0]]
    rows += [["writer", "INSERT", model.database, t, None, 0, 0] for t in tables]
    return sorted(rows, key=str)


def expected_profiles(model: m.TenantModel) -> list[list[Any]]:
    r, w = model.clickhouse.reader, model.clickhouse.writer
    # reader: reads only, each event once (FINAL) however often it was sent
    rows: list[list[Any]] = [["reader", "readonly", "2", None, None]]
    rows.append(["reader", "final", "1", None, None])
    for name, value in (
        ("max_execution_time", r.max_execution_time_s),
        ("max_memory_usage", r.max_memory_usage_bytes),
        ("max_rows_to_read", r.max_rows_to_read),
        ("max_result_rows", r.max_result_rows),
    ):
        rows.append(["reader", name, str(value), "1", str(value)])
    for name, value in (
        ("max_execution_time", w.max_execution_time_s),
        ("max_memory_usage", w.max_memory_usage_bytes),
    ):
        rows.append(["writer", name, str(value), "1", str(value)])
    return rows


def expected_quotas(model: m.TenantModel) -> list[list[Any]]:
    r, w = model.clickhouse.reader, model.clickhouse.writer
    return [
        ["default", 3600, None, None],  # the image's, which admin keeps
        ["reader", 3600, r.queries_per_hour, float(r.execution_time_per_hour_s)],
        ["writer", 60, w.queries_per_minute, None],
    ]


# -- checks ----------------------------------------------------------------------------


def _sorted(rows: list[list[Any]]) -> list[list[Any]]:
    return sorted(rows, key=str)


def check_host(model: m.TenantModel, host: m.Host, root: Path) -> None:
    pod = chconfig.host_files(model, host)
    loaded = chconfig.load(pod, root, env=ENV, queries=HOST_QUERIES)
    assert loaded.started, f"{host.name}: the engine refused the config: {loaded.error}"
    assert loaded.rows(0) == expected_macros(model, host)
    assert loaded.rows(1) == expected_clusters(model)


def check_access(model: m.TenantModel, root: Path) -> None:
    pod = chconfig.as_user(chconfig.host_files(model, model.clickhouse.hosts[0]), "admin")
    loaded = chconfig.load(pod, root, env=ENV, queries=ACCESS_QUERIES)
    assert loaded.started, loaded.error
    users = {row[0]: row[1:] for row in loaded.rows(0)}
    assert set(users) == {"admin", "default", "reader", "writer"}
    for name in ("admin", "reader", "writer"):
        # from_env: a password (the env's), never "no password"
        assert users[name] == ["users_xml", "['plaintext_password']"], name
    assert _sorted(loaded.rows(1)) == expected_grants(model)
    assert _sorted(loaded.rows(2)) == _sorted(expected_profiles(model))
    assigned = dict(map(tuple, loaded.rows(3)))
    assert {u: assigned[u] for u in ("admin", "reader", "writer")} == {
        "admin": "default",
        "reader": "reader",
        "writer": "writer",
    }
    assert loaded.rows(4) == expected_quotas(model)
    quotas = dict(map(tuple, loaded.rows(5)))
    assert quotas["reader"] == "['reader']"
    assert quotas["writer"] == "['writer']"
    # every right (ClickHouse 26 spells ALL out), on everything, and it may grant them
    lines = [row[0] for row in loaded.rows(6)]
    assert all(line.endswith(" TO admin WITH GRANT OPTION") for line in lines), lines
    on_all = " ".join(line for line in lines if line.endswith(" ON *.* TO admin WITH GRANT OPTION"))
    for right in ("SELECT", "INSERT", "ALTER", "CREATE", "DROP", "BACKUP", "ROLE ADMIN"):
        assert f" {right}," in on_all, right


# -- the example Tenants ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_every_host_of_every_example_tenant_loads_as_rendered(name: str, tmp_path: Path) -> None:
    model = fixtures.model(name)
    for host in model.clickhouse.hosts:
        check_host(model, host, tmp_path / host.name)


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_users_grants_profiles_and_quotas_of_example_tenants(name: str, tmp_path: Path) -> None:
    check_access(fixtures.model(name), tmp_path)


# -- random valid Tenants --------------------------------------------------------------


def _setting_value(setting: server_settings.Setting) -> st.SearchStrategy[str]:
    if setting.kind == "ratio":
        return st.sampled_from(["0.5", "0.8", "1"])
    if setting.kind == "text":
        return st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
    return st.integers(setting.low, min(setting.high, 10**12)).map(str)


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Tenant specs inside every bound. Not the CR fuzz test's ``tenant_specs``: that
    one mixes in values past the bounds on purpose (the API server must refuse them),
    and filtering them out by hand would make a weaker, slower strategy."""
    names = draw(st.lists(st.sampled_from(sorted(server_settings.ALLOWED)), max_size=3))
    values = {n: draw(_setting_value(server_settings.ALLOWED[n])) for n in names}
    clickhouse: dict[str, Any] = {"settings": values}
    if draw(st.booleans()):  # else the plan's layout
        clickhouse["shards"] = draw(st.integers(1, 4))
        clickhouse["replicas"] = draw(st.integers(1, 3))
    spec: dict[str, Any] = {"plan": draw(st.sampled_from([p.value for p in Plan]))}
    spec["clickhouse"] = clickhouse
    if draw(st.booleans()):
        spec["retentionDays"] = draw(st.integers(1, 3650))
    return spec


def _model(spec: dict[str, Any]) -> m.TenantModel:
    body = {
        "apiVersion": "tenantry.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "prop", "uid": fixtures.UID, "generation": 1},
        "spec": spec,
    }
    return tenant_model(body, platform_namespaces=fixtures.PLATFORM_NAMESPACES)


@settings(max_examples=12, deadline=None, database=None, derandomize=True)
@given(spec=valid_specs(), pick=st.integers(min_value=0, max_value=1000))
def test_random_valid_tenants_load_and_match_the_model(spec: dict[str, Any], pick: int) -> None:
    """About 1 s an example: one host of the tenant as rendered, and its users."""
    model = _model(spec)
    host = model.clickhouse.hosts[pick % len(model.clickhouse.hosts)]
    with tempfile.TemporaryDirectory() as tmp:
        check_host(model, host, Path(tmp) / "host")
        check_access(model, Path(tmp) / "access")


# -- the check can fail ----------------------------------------------------------------


def _broken(model: m.TenantModel, path: str, old: str, new: str) -> chconfig.PodFiles:
    pod = chconfig.host_files(model, model.clickhouse.hosts[0])
    assert old in pod.files[path], f"{old!r} is not in {path}"
    files = dict(pod.files)
    files[path] = pod.files[path].replace(old, new, 1)
    return chconfig.PodFiles(files, pod.config_file, pod.data_dir, pod.env_names)


USERS_XML = "/etc/clickhouse-server/users.d/users.xml"
SERVER_XML = "/etc/clickhouse-server/config.d/server.xml"
CLUSTER_XML = "/etc/clickhouse-server/config.d/cluster.xml"


@pytest.mark.parametrize(
    ("path", "old", "new", "message"),
    [
        (USERS_XML, "<profile>reader</profile>", "<profile>readers</profile>", "readers"),
        (USERS_XML, "<readonly>2</readonly>", "<readonly>two</readonly>", "readonly"),
        (USERS_XML, "GRANT SELECT ON", "GRANT SELECT ONN", "Syntax error"),
        (USERS_XML, "`t_globex`.*<", "`t_globex`.* TO reader<", "grantees"),
        (USERS_XML, "</reader>\n    </profiles>", "</reader>\n    <profiles>", "users.xml"),
        (SERVER_XML, "<interserver_http_port>9009<", "<interserver_http_port>x<", "interserver"),
        (CLUSTER_XML, "<port>9000</port>", "<port>nine</port>", "Not a valid integer: 'nine'"),
    ],
    ids=[
        "unknown-profile",
        "bad-setting",
        "bad-grant",
        "grant-to",
        "bad-xml",
        "bad-port",
        "bad-shard-port",
    ],
)
def test_a_broken_config_fails_to_load_with_a_clear_error(
    path: str, old: str, new: str, message: str, tmp_path: Path
) -> None:
    """Each fails where ClickHouse reads it: at start, or (remote_servers, which chDB
    parses on first use, a server at start) at the host check's first look at
    ``system.clusters``, which ``check_host`` always makes."""
    model = fixtures.model("tenant-sharded")
    loaded = chconfig.load(_broken(model, path, old, new), tmp_path, env=ENV, queries=HOST_QUERIES)
    errors = [loaded.error, *(r.error for r in loaded.results)]
    assert not loaded.started or not all(r.ok for r in loaded.results)
    assert any(message in e for e in errors), errors


def test_a_shard_without_replicas_fails_to_load(tmp_path: Path) -> None:
    model = fixtures.model("tenant-sharded")
    pod = chconfig.host_files(model, model.clickhouse.hosts[0])
    empty_shard = re.sub(
        r"<shard>.*?</shard>", "<shard></shard>", pod.files[CLUSTER_XML], count=1, flags=re.S
    )
    files = {**pod.files, CLUSTER_XML: empty_shard}
    loaded = chconfig.load(
        chconfig.PodFiles(files, pod.config_file, pod.data_dir, pod.env_names),
        tmp_path,
        env=ENV,
        queries=HOST_QUERIES,
    )
    assert loaded.started
    # chDB reads remote_servers on first use; the engine's message is an out_of_range
    assert not loaded.results[1].ok, "a shard with no replica was accepted"


# -- passwords -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_passwords_come_from_the_env_and_never_from_a_config_map(name: str) -> None:
    objects = builders.build(fixtures.model(name))
    ours = [o for o in objects if o["metadata"]["labels"].get(LABEL_COMPONENT) == "clickhouse"]
    config_maps = [o for o in ours if o["kind"] == "ConfigMap"]
    statefulsets = [o for o in ours if o["kind"] == "StatefulSet"]
    text = "\n".join(v for cm in config_maps for v in cm.get("data", {}).values())
    for secret in ENV.values():
        assert secret not in text
    passwords = re.findall(r"<password[^>]*?/?>(?:[^<]*</password>)?", text)
    assert passwords, "no password element rendered"
    for element in passwords:
        assert re.fullmatch(r'<password from_env="CLICKHOUSE_[A-Z]+_PASSWORD"/>', element), element
    wanted = {u.env for u in ch_builder.USERS} | {ch_builder.INTERSERVER_SECRET_ENV}
    assert set(re.findall(r'from_env="([A-Z_]+)"', text)) == wanted
    for sts in statefulsets:
        container = sts["spec"]["template"]["spec"]["containers"][0]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert wanted <= set(refs)
        # not optional: a pod whose Secret lacks a key does not start (an unset env
        # would leave the user with an empty password, the cluster with no secret)
        assert not any(refs[name].get("optional") for name in wanted)
        assert refs[ch_builder.INTERSERVER_SECRET_ENV] == {
            "name": contract.CLICKHOUSE_INTERSERVER_SECRET,
            "key": contract.CLICKHOUSE_INTERSERVER_KEY,
        }


@pytest.mark.parametrize("name", sorted(fixtures.EXAMPLES))
def test_the_cluster_has_an_interserver_secret_from_the_env(name: str, tmp_path: Path) -> None:
    """remote_servers carries ``<secret>`` read from the env (never a literal), the
    engine starts on the tree with it, and the operator generates the Secret it comes
    from like the passwords' (created once, never rendered)."""
    model = fixtures.model(name)
    host = model.clickhouse.hosts[0]
    pod = chconfig.host_files(model, host)
    cluster = ET.fromstring(pod.files["/etc/clickhouse-server/config.d/cluster.xml"])  # noqa: S314
    (element,) = cluster.findall(f"./remote_servers/{model.cluster_name}/secret")
    assert element.attrib == {"from_env": ch_builder.INTERSERVER_SECRET_ENV}
    assert not (element.text or "").strip()
    assert ch_builder.INTERSERVER_SECRET_ENV in pod.env_names
    loaded = chconfig.load(pod, tmp_path, env=ENV, queries=HOST_QUERIES)
    assert loaded.started, loaded.error
    assert loaded.rows(1) == expected_clusters(model)
    generated = secrets.generated_secret(model, contract.CLICKHOUSE_INTERSERVER_SECRET)
    (value,) = generated["data"].values()
    assert len(base64.b64decode(value)) >= 32
    assert list(generated["data"]) == [contract.CLICKHOUSE_INTERSERVER_KEY]


def test_a_builder_that_renders_an_unknown_profile_fails_the_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Broken at the source, not in the text: the builder itself renders a user whose
    profile no users.xml defines, and the engine refuses to start on it."""
    broken = tuple(
        dataclasses.replace(u, profile="no_such_profile") if u.name == "reader" else u
        for u in ch_builder.USERS
    )
    monkeypatch.setattr(ch_builder, "USERS", broken)
    model = fixtures.model("tenant-starter")
    loaded = chconfig.load(chconfig.host_files(model, model.clickhouse.hosts[0]), tmp_path, env=ENV)
    assert not loaded.started
    assert "no_such_profile" in loaded.error


# -- the Prometheus endpoints (issue 16) -----------------------------------------------

# keeper_metrics_only is rendered explicitly (at its default) so that "changed" is 1
# exactly when the engine read our <prometheus> section from the mounted tree.
PROMETHEUS_QUERY = (
    "SELECT value, changed FROM system.server_settings"
    " WHERE name = 'prometheus.keeper_metrics_only'"
)


def _prometheus_sections(files: dict[str, str]) -> list[dict[str, str]]:
    sections = []
    for text in files.values():
        root = ET.fromstring(text)  # noqa: S314 - our own rendered file
        for section in root.findall("prometheus"):
            sections.append({child.tag: (child.text or "") for child in section})
    return sections


def _container_ports(objects: list[dict[str, Any]], name: str, container: str) -> dict[str, int]:
    (sts,) = [o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == name]
    (found,) = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == container]
    return {p["name"]: p["containerPort"] for p in found["ports"]}


def test_clickhouse_serves_prometheus_metrics_on_its_metrics_port(tmp_path: Path) -> None:
    model = fixtures.model("tenant-sharded")
    objects = builders.build(model)
    host = model.clickhouse.hosts[0]
    pod = chconfig.pod_files(objects, host)
    (section,) = _prometheus_sections(pod.files)
    assert section["port"] == str(ch_builder.METRICS_PORT)
    assert section["endpoint"] == "/metrics"
    for kind in ("metrics", "events", "asynchronous_metrics", "errors"):
        assert section[kind] == "true", kind
    assert _container_ports(objects, host.name, "clickhouse")["metrics"] == ch_builder.METRICS_PORT
    loaded = chconfig.load(pod, tmp_path, env=ENV, queries=(PROMETHEUS_QUERY,))
    assert loaded.started, loaded.error
    assert loaded.rows(0) == [["0", 1]]


def test_keeper_config_with_its_prometheus_endpoint_loads(tmp_path: Path) -> None:
    model = fixtures.model("tenant-sharded")
    objects = builders.build(model)
    files, _ = chconfig.keeper_files(objects)
    (section,) = _prometheus_sections(files)
    assert section["port"] == str(keeper_builder.METRICS_PORT)
    assert section["endpoint"] == "/metrics"
    assert _container_ports(objects, "keeper", "keeper")["metrics"] == keeper_builder.METRICS_PORT
    loaded = chconfig.load_keeper(
        objects, tmp_path, env={"KEEPER_SERVER_ID": "1"}, queries=(PROMETHEUS_QUERY,)
    )
    assert loaded.started, loaded.error
    assert loaded.rows(0) == [["0", 1]]
