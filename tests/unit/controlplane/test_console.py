"""The control plane serves the built web console under a strict CSP (controlplane/console.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from controlplane import console
from controlplane.app import create_app
from controlplane.rbac.dependencies import Public
from controlplane.settings import Settings


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<div id="app"></div>')
    (tmp_path / "assets" / "index-abc123.js").write_text("export {};")
    (tmp_path / "assets" / "index-abc123.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("not an asset")
    return tmp_path


@pytest.fixture
def client(dist: Path) -> TestClient:
    return TestClient(create_app(Settings(console_dir=dist)))


@pytest.mark.parametrize(
    "path", ["/", "/login", "/signup", "/callback", "/invitations/accept", "/orgs/o/tenants/t"]
)
def test_pages_answer_index_with_the_csp(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.text == '<div id="app"></div>'
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == console.CONTENT_SECURITY_POLICY
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-frame-options"] == "DENY"


def test_the_policy_allows_no_inline_script_and_no_other_origin() -> None:
    directives = dict(
        part.strip().split(" ", 1) for part in console.CONTENT_SECURITY_POLICY.split(";")
    )
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    for value in directives.values():
        assert "unsafe" not in value
        assert "http" not in value
        assert "*" not in value


def test_assets_are_typed_and_cached(client: TestClient) -> None:
    js = client.get("/assets/index-abc123.js")
    assert js.status_code == 200
    assert js.text == "export {};"
    assert "javascript" in js.headers["content-type"]
    assert "immutable" in js.headers["cache-control"]
    assert js.headers["content-security-policy"] == console.CONTENT_SECURITY_POLICY
    assert "text/css" in client.get("/assets/index-abc123.css").headers["content-type"]


@pytest.mark.parametrize(
    "path", ["/assets/nope.js", "/assets/..%2Fsecret.txt", "/assets/.hidden", "/secret.txt"]
)
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_an_unbuilt_console_is_a_clear_404(tmp_path: Path) -> None:
    r = TestClient(create_app(Settings(console_dir=tmp_path))).get("/")
    assert r.status_code == 404
    assert "not built" in r.json()["error"]["message"]


def _routes(settings: Settings) -> dict[str, APIRoute]:
    out = {}
    for ctx in iter_route_contexts(create_app(settings).routes):
        if isinstance(ctx.original_route, APIRoute):
            out[str(ctx.path)] = ctx.original_route
    return out


def test_console_routes_are_public_and_absent_without_the_setting(dist: Path) -> None:
    ours = {*console.PAGES, "/assets/{name}"}
    routes = _routes(Settings(console_dir=dist))
    assert ours <= set(routes)
    for path in ours:
        calls = [d.call for d in routes[path].dependant.dependencies]
        assert any(isinstance(c, Public) for c in calls), path
    assert not (ours & set(_routes(Settings())))
