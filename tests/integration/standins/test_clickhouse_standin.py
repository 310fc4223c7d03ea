"""The ClickHouse stand-in (``standins.clickhouse``) started from the config tree the
operator's own builders render for a real Tenant, as the pod mounts it.

It answers the probes the StatefulSet renders, authenticates every user of that tree
(and nobody else), keeps the readonly user from writing, takes the schema the operator
provisions with the operator's own schema step, and an insert as the ingestion service
sends it (its settings read from the env the builder renders). A tree the server would
refuse stops the start with a clear message and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import select
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from tenantry_operator import builders
from tenantry_operator import model as m
from tenantry_operator.dataplane import schema_step
from tenantry_operator.normalize import tenant_model

from ingestion import events
from ingestion.settings import from_env
from tenantry import contract
from tenantry.clickhouse import open_client
from tenantry.clickhouse.client import ClickHouseError
from tests.support import chconfig
from tests.support import standins as support
from tests.support.wait import scaled, stop_process

PASSWORDS = {"admin": "admin-pw-1", "writer": "writer-pw-2", "reader": "reader-pw-3"}
ENV = {f"CLICKHOUSE_{user.upper()}_PASSWORD": pw for user, pw in PASSWORDS.items()}
START_TIMEOUT_S = 60.0


@dataclass
class Running:
    model: m.TenantModel
    objects: list[dict[str, Any]]
    port: int
    proc: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def render(name: str = "acme") -> tuple[m.TenantModel, list[dict[str, Any]]]:
    model = tenant_model({"metadata": {"name": name}, "spec": {}})
    return model, builders.build(model)


def lay_out(objects: list[dict[str, Any]], model: m.TenantModel, root: Path) -> Path:
    return chconfig.lay_out(chconfig.pod_files(objects, model.clickhouse.hosts[0]), root)


def ready_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], scaled(timeout))
    return proc.stdout.readline() if readable else ""


def start(root: Path, config: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    sock = support.listening_socket()
    try:
        proc = support.spawn(
            support.clickhouse_argv(config, sock.fileno()),
            var_lib=root / "var/lib",
            env=env,
            log=root / "stderr.log",
            pass_fds=[sock.fileno()],
        )
        return proc, sock.getsockname()[1]
    finally:
        sock.close()  # the child holds its own copy


def start_fails(root: Path, config: Path, env: dict[str, str] = ENV) -> tuple[int, str]:
    proc = support.spawn(
        support.clickhouse_argv(config, None), var_lib=root / "var/lib", env=env, log=root / "err"
    )
    try:
        code = proc.wait(timeout=scaled(START_TIMEOUT_S))
    finally:
        stop_process(proc, what="clickhouse stand-in")
    return code, (root / "err").read_text()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("ch-standin")
    model, objects = render()
    proc, port = start(root, lay_out(objects, model, root), ENV)
    line = ready_line(proc, START_TIMEOUT_S)
    if "ready" not in line:
        stop_process(proc, what="clickhouse stand-in")
        raise AssertionError(
            f"stand-in did not start: {line!r}\n{(root / 'stderr.log').read_text()[-3000:]}"
        )
    yield Running(model=model, objects=objects, port=port, proc=proc)
    assert stop_process(proc, what="clickhouse stand-in") == 0


def http(
    running: Running,
    sql: str = "",
    *,
    path: str = "/",
    method: str = "POST",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    query = f"?{urlencode(params)}" if params else ""
    data = sql.encode() if method == "POST" else None
    request = urllib.request.Request(  # noqa: S310 - loopback http
        running.url + path + query, data=data, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def as_user(user: str, password: str) -> dict[str, str]:
    return {"X-ClickHouse-User": user, "X-ClickHouse-Key": password}


def container(objects: list[dict[str, Any]], host: m.Host) -> dict[str, Any]:
    (sts,) = [
        o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == host.name
    ]
    (found,) = [
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "clickhouse"
    ]
    return dict(found)


# -- probes ----------------------------------------------------------------------------


def test_answers_every_probe_the_statefulset_renders(standin: Running) -> None:
    spec = container(standin.objects, standin.model.clickhouse.hosts[0])
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    probes = [spec[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert all("httpGet" in p for p in probes), probes
    for probe in probes:
        # the probe's port is the http_port the stand-in read from the same tree
        assert ports[probe["httpGet"]["port"]] == 8123
        status, _, body = http(standin, path=probe["httpGet"]["path"], method="GET")
        assert (status, body) == (200, "Ok.\n")
    status, _, body = http(standin, path="/", method="GET")
    assert (status, body) == (200, "Ok.\n")


def test_the_engine_loaded_the_rendered_macros_and_cluster(standin: Running) -> None:
    status, _, body = http(
        standin,
        "SELECT macro, substitution FROM system.macros ORDER BY macro FORMAT JSONEachRow",
        headers=as_user("admin", PASSWORDS["admin"]),
    )
    assert status == 200, body
    rows = [json.loads(line) for line in body.splitlines()]
    host = standin.model.clickhouse.hosts[0]
    assert {r["macro"]: r["substitution"] for r in rows} == {
        "cluster": standin.model.cluster_name,
        "replica": host.name,
        "shard": str(host.shard),
    }


# -- users -----------------------------------------------------------------------------


@pytest.mark.parametrize("user", sorted(PASSWORDS))
def test_each_user_of_the_tree_authenticates_every_way_clickhouse_accepts(
    standin: Running, user: str
) -> None:
    password = PASSWORDS[user]
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    ways: list[dict[str, Any]] = [
        {"headers": as_user(user, password)},
        {"headers": {"Authorization": f"Basic {basic}"}},
        {"params": {"user": user, "password": password}},
    ]
    for way in ways:
        status, _, body = http(standin, "SELECT 42", **way)
        assert (status, body) == (200, "42\n"), way


@pytest.mark.parametrize("user", [*sorted(PASSWORDS), "nobody"])
def test_a_wrong_password_is_refused_as_clickhouse_refuses_it(standin: Running, user: str) -> None:
    status, headers, body = http(standin, "SELECT 1", headers=as_user(user, "wrong"))
    assert status == 401
    assert headers["X-ClickHouse-Exception-Code"] == "516"
    assert "AUTHENTICATION_FAILED" in body
    assert "wrong" not in body


def test_a_password_from_another_user_is_refused(standin: Running) -> None:
    status, headers, _ = http(standin, "SELECT 1", headers=as_user("admin", PASSWORDS["reader"]))
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (401, "516")


def test_the_readonly_user_cannot_write_and_its_profile_applies(standin: Running) -> None:
    reader = as_user("reader", PASSWORDS["reader"])
    status, headers, body = http(
        standin, "CREATE TABLE default.nope (a Int8) ENGINE = Memory", headers=reader
    )
    assert status == 403, body
    assert headers["X-ClickHouse-Exception-Code"] == "164"
    # its profile's settings are in force (the rendered plan limits), the writer's are not
    status, _, body = http(
        standin, "SELECT getSetting('readonly'), getSetting('max_result_rows')", headers=reader
    )
    assert (status, body) == (200, f"2\t{standin.model.clickhouse.reader.max_result_rows}\n")
    status, _, body = http(
        standin, "SELECT getSetting('readonly')", headers=as_user("writer", PASSWORDS["writer"])
    )
    assert (status, body) == (200, "0\n")


def test_the_password_less_default_user_answers_loopback_only_as_rendered(standin: Running) -> None:
    # the rendered users.d limits `default` to ::1 and 127.0.0.1: this client is on loopback
    status, _, body = http(standin, "SELECT 1", headers=as_user("default", ""))
    assert (status, body) == (200, "1\n")


# -- what the product sends ------------------------------------------------------------


def ingestion_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The ingestion container's env as rendered, Secret references resolved."""
    (deployment,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "ingestion"
    ]
    (spec,) = deployment["spec"]["template"]["spec"]["containers"]
    secrets = {
        (contract.CLICKHOUSE_SECRET, key): PASSWORDS[user]
        for user, key in contract.CLICKHOUSE_PASSWORD_KEYS.items()
    }
    env: dict[str, str] = {"TENANTRY_INGEST_KEYS": "0" * 64}
    for var in spec["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets.get((ref["name"], ref["key"]), "secret")
    return env


def to_standin(url: str, running: Running) -> str:
    """The same URL (user, password, database) with the Service's host:port replaced by
    the stand-in's loopback address."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = (
        f"{credentials}@127.0.0.1:{running.port}" if credentials else f"127.0.0.1:{running.port}"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def test_takes_the_operators_schema_and_an_ingestion_insert(standin: Running) -> None:
    model = standin.model
    admin = open_client(f"http://admin:{PASSWORDS['admin']}@127.0.0.1:{standin.port}/")
    try:
        result = asyncio.run(schema_step.ensure_schema(admin, model))
        assert result.database == contract.tenant_database(model.name)
        again = asyncio.run(schema_step.ensure_schema(admin, model))
        assert not again.created  # idempotent, as on a server
    finally:
        admin.close()

    settings = from_env(ingestion_env(standin.objects))
    assert settings.database == contract.tenant_database(model.name)
    writer = open_client(to_standin(settings.clickhouse_url, standin))
    body = b"".join(
        json.dumps({"event": "signup", "user_id": f"u{i}", "properties": {"n": i}}).encode() + b"\n"
        for i in range(25)
    )
    now = dt.datetime.now(dt.UTC)
    chunk = events.prepare(
        body,
        ndjson=True,
        now=now,
        limits=events.Limits(retention_days=model.retention_days),
        batch_id="b1",
    )[0]
    try:
        writer.insert_rowbinary(settings.table, [chunk], dedup_token="b1")
        writer.insert_rowbinary(settings.table, [chunk], dedup_token="b1")  # a retry: dropped
    finally:
        writer.close()

    reader = open_client(f"http://reader:{PASSWORDS['reader']}@127.0.0.1:{standin.port}/")
    try:
        (row,) = reader.query(
            f"SELECT count() AS n, uniqExact(user_id) AS users FROM {settings.table}"  # noqa: S608
        )
        assert row == {"n": 25, "users": 25}
        with pytest.raises(ClickHouseError) as denied:
            reader.insert_json(settings.table, b'{"event":"x","user_id":"u"}')
        assert denied.value.code == 164
    finally:
        reader.close()


# -- trees a server refuses ------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    model, objects = render("broken")
    return tmp_path, lay_out(objects, model, tmp_path)


def test_bad_xml_stops_the_start(tree: tuple[Path, Path]) -> None:
    root, config = tree
    host_xml = config.parent / "config.d" / "host.xml"
    host_xml.write_text(host_xml.read_text().replace("</macros>", "</macro>"))
    code, err = start_fails(root, config)
    assert code == 1
    assert "cannot start" in err
    assert "host.xml: not well-formed XML" in err


def test_a_non_integer_port_stops_the_start(tree: tuple[Path, Path]) -> None:
    root, config = tree
    server_xml = config.parent / "config.d" / "server.xml"
    server_xml.write_text(server_xml.read_text().replace("<http_port>8123<", "<http_port>80x<"))
    code, err = start_fails(root, config)
    assert code == 1
    assert "<http_port>: '80x' is not a port number" in err


def test_an_unknown_profile_stops_the_start(tree: tuple[Path, Path]) -> None:
    root, config = tree
    users_xml = config.parent / "users.d" / "users.xml"
    text = users_xml.read_text()
    assert "<profile>reader</profile>" in text
    users_xml.write_text(text.replace("<profile>reader</profile>", "<profile>no_such</profile>"))
    code, err = start_fails(root, config)
    assert code == 1
    assert "the ClickHouse engine refused" in err
    assert "no_such" in err


# -- what a multi-host layout can and cannot do on stand-ins ---------------------------


def test_one_host_of_two_shards_serves_its_own_shard_only(tmp_path: Path) -> None:
    """2 shards x 1 replica: `events` is Distributed over the cluster. The stand-in's own
    name resolves to itself (as a pod's does), so its shard is local; the other shard is
    dialled over the native protocol, which no stand-in serves. What works and what does
    not, as README says: the operator's schema step, an insert through `events` (this
    shard's rows stored, the other shard's queued undeliverable), reading this shard;
    reading through `events` fails with ALL_CONNECTION_TRIES_FAILED."""
    model = tenant_model({"metadata": {"name": "acme"}, "spec": {"clickhouse": {"shards": 2}}})
    objects = builders.build(model)
    host = model.clickhouse.hosts[0]
    config = lay_out(objects, model, tmp_path)
    own = f"{host.name}.{model.namespace}.svc.cluster.local"
    hosts = support.hosts_file(tmp_path, [own, host.name])
    sock = support.listening_socket()
    try:
        proc = support.spawn(
            support.clickhouse_argv(config, sock.fileno()),
            var_lib=tmp_path / "var/lib",
            env=ENV,
            log=tmp_path / "stderr.log",
            binds={hosts: "/etc/hosts"},
            pass_fds=[sock.fileno()],
        )
        port = sock.getsockname()[1]
    finally:
        sock.close()
    admin = None
    try:
        assert "ready" in ready_line(proc, START_TIMEOUT_S), (tmp_path / "stderr.log").read_text()
        admin = open_client(f"http://admin:{PASSWORDS['admin']}@127.0.0.1:{port}/")
        result = asyncio.run(schema_step.ensure_schema(admin, model))
        db = result.database
        assert result.created
        clusters = admin.query("SELECT host_name, is_local FROM system.clusters ORDER BY ALL")
        assert [(r["host_name"].split(".")[0], r["is_local"]) for r in clusters] == [
            ("ch-s0-r0", 1),
            ("ch-s1-r0", 0),
        ]
        admin.command(
            f"INSERT INTO {db}.events (event_id, timestamp, event, user_id, properties)"  # noqa: S608
            " SELECT generateUUIDv4(), now64(3), 'e', toString(number), '{}' FROM numbers(200)"
        )
        (local,) = admin.query(f"SELECT count() AS n FROM {db}.events_local")  # noqa: S608
        assert 0 < local["n"] < 200  # this shard's part only
        with pytest.raises(ClickHouseError) as failed:
            admin.query(f"SELECT count() AS n FROM {db}.events")  # noqa: S608
        assert failed.value.code == 279  # ALL_CONNECTION_TRIES_FAILED: ch-s1-r0:9000
        assert "ch-s1-r0" in str(failed.value)
    finally:
        if admin is not None:
            admin.close()
        stop_process(proc, what="clickhouse stand-in")
