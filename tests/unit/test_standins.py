"""The stand-ins' pure parts: reading a config tree as ClickHouse does, the users and how
they prove themselves, and Keeper's translation to ZooKeeper. (The servers themselves
are tested running: tests/integration/standins.)"""

from __future__ import annotations

import hashlib
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import cast

import pytest

from standins import clickhouse, keeper
from standins.clickhouse_http import Engine, handler_class
from standins.config import ConfigError, merged

USERS = """<clickhouse>
    <users>
        <default>
            <password/>
            <networks><ip>::/0</ip></networks>
        </default>
        <hashed>
            <password_sha256_hex>{digest}</password_sha256_hex>
            <networks><ip>10.0.0.0/8</ip></networks>
            <profile>reader</profile>
        </hashed>
        <open><no_password/><networks><ip>::1</ip><ip>127.0.0.1</ip></networks></open>
        <fromenv><password from_env="STANDIN_TEST_PW"/><networks><ip>::/0</ip></networks></fromenv>
    </users>
</clickhouse>
"""
OVERRIDE = """<clickhouse>
    <users>
        <default><networks replace="replace"><ip>127.0.0.1</ip></networks></default>
        <open remove="remove"/>
    </users>
</clickhouse>
"""


def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, clickhouse.User]:
    monkeypatch.setenv("STANDIN_TEST_PW", "from-env")
    digest = hashlib.sha256(b"s3cret").hexdigest().upper()
    (tmp_path / "users.xml").write_text(USERS.format(digest=digest))
    (tmp_path / "users.d").mkdir()
    (tmp_path / "users.d" / "z.xml").write_text(OVERRIDE)
    return clickhouse.users(merged(tmp_path / "users.xml"))


def test_passwords_plain_from_env_and_sha256_hex(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tree(tmp_path, monkeypatch)
    assert users["hashed"].accepts("s3cret")
    assert not users["hashed"].accepts("S3cret")
    assert users["hashed"].profile == "reader"
    assert users["fromenv"].accepts("from-env")
    assert not users["fromenv"].accepts("")
    assert users["default"].accepts("")
    assert not users["default"].accepts("x")


def test_users_d_replaces_and_removes_as_clickhouse_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tree(tmp_path, monkeypatch)
    assert "open" not in users
    assert users["default"].allows("127.0.0.1")
    assert not users["default"].allows("10.1.2.3")  # ::/0 replaced


def test_networks_hold_ipv4_in_ipv6_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = tree(tmp_path, monkeypatch)
    assert users["fromenv"].allows("10.1.2.3")  # ::/0 is everyone
    assert users["fromenv"].allows("::ffff:10.1.2.3")
    assert users["hashed"].allows("::ffff:10.9.9.9")
    assert not users["hashed"].allows("192.0.2.1")


def test_two_kinds_of_password_are_refused(tmp_path: Path) -> None:
    (tmp_path / "users.xml").write_text(
        "<clickhouse><users><u><password>a</password>"
        "<password_sha256_hex>00</password_sha256_hex></u></users></clickhouse>"
    )
    with pytest.raises(ConfigError, match="user u: more than one of password, password_sha256_hex"):
        clickhouse.users(merged(tmp_path / "users.xml"))


@pytest.mark.parametrize(("value", "ok"), [("8123", True), ("80x", False), ("70000", False)])
def test_ports_must_be_port_numbers(value: str, ok: bool) -> None:
    config = ET.fromstring(f"<clickhouse><http_port>{value}</http_port></clickhouse>")  # noqa: S314
    if ok:
        assert clickhouse.check_ports(config) == {"http_port": int(value)}
    else:
        with pytest.raises(ConfigError, match=f"<http_port>: '{value}' is not a port number"):
            clickhouse.check_ports(config)


def test_a_lone_keeper_runs_standalone() -> None:
    config = keeper.KeeperConfig(
        client_port=9181,
        server_id=1,
        servers=(keeper.Server(1, "keeper-0.x", 9234),),
        data_dir="/d",
        log_dir="/l",
        session_timeout_ms=30000,
    )
    text = keeper.zoo_cfg(config)
    assert "clientPort=9181" in text
    assert not [line for line in text.splitlines() if line.startswith("server.")]  # standalone
    assert "maxSessionTimeout=40000" in text


def test_the_http_handler_turns_nagle_off_on_each_connection() -> None:
    """A response is two writes (headers, then body). With Nagle's algorithm on, the body
    waited for the client's delayed ACK of the headers: 45-50 ms per statement instead of
    about 3 (strace of clickhouse-connect against the loopback server). The handler's own
    setup, on a real TCP connection, must set TCP_NODELAY."""
    cls = handler_class(cast(Engine, None), server_version="test")  # setup never reads it
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        with client, conn:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            handler = cls.__new__(cls)
            handler.request = conn
            handler.setup()
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            handler.finish()
