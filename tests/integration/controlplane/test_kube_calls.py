"""The control plane's Kubernetes calls (controlplane/kube.py) against real HTTP
endpoints on loopback: a 429 (the API server's "try again") is retried, an API server
that cannot be reached is ``Unavailable`` (503), never an unhandled transport error."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from lightkube import AsyncClient, KubeConfig

from controlplane.errors import Unavailable
from controlplane.kube import KubeResources
from tests.support.loopback import serving


def _config(server: str) -> KubeConfig:
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


TENANT = {
    "apiVersion": "tenantry.io/v1alpha1",
    "kind": "Tenant",
    "metadata": {"name": "acme-shop", "resourceVersion": "7", "labels": {}},
    "spec": {"plan": "starter"},
}


def _json(body: object, *, status: int) -> web.Response:
    # exactly the API server's content type: lightkube reads a Status only from it
    headers = {"Content-Type": "application/json"}
    return web.Response(body=json.dumps(body).encode(), status=status, headers=headers)


@pytest.fixture
async def busy_server() -> AsyncIterator[tuple[str, list[int]]]:
    """An API server that answers 429 to the first two requests, then the Tenant."""
    answered: list[int] = []

    async def tenant(request: web.Request) -> web.Response:
        if request.match_info["name"] != "acme-shop":
            answered.append(404)
            return _json({"kind": "Status", "code": 404, "message": "not found"}, status=404)
        if len(answered) < 2:
            answered.append(429)
            status = {"kind": "Status", "code": 429, "message": "storage is initialising"}
            return _json(status, status=429)
        answered.append(200)
        return _json(TENANT, status=200)

    app = web.Application()
    app.router.add_get("/apis/tenantry.io/v1alpha1/tenants/{name}", tenant)
    async with serving(app) as url:
        yield url, answered


async def test_a_busy_api_server_is_asked_again(busy_server: tuple[str, list[int]]) -> None:
    url, answered = busy_server
    kube = KubeResources(AsyncClient(config=_config(url)), watch=False)
    try:
        found = await kube.tenants.get("acme-shop")
    finally:
        await kube.close()
    assert found is not None
    assert found.spec == {"plan": "starter"}
    assert answered == [429, 429, 200]


async def test_the_api_servers_answers_stay_what_they_are(
    busy_server: tuple[str, list[int]],
) -> None:
    """A 404 is the API server's answer, not an outage: the repository says "missing"."""
    url, answered = busy_server
    kube = KubeResources(AsyncClient(config=_config(url)), watch=False)
    try:
        assert await kube.tenants.get("acme-other") is None
    finally:
        await kube.close()
    assert answered == [404]


async def test_an_unreachable_api_server_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _config(f"http://127.0.0.1:{port}")
    kube = KubeResources(AsyncClient(config=config), watch=False)
    try:
        with pytest.raises(Unavailable, match="unreachable"):
            await kube.tenants.get("acme-shop")
        assert await kube.ping() is False
    finally:
        await kube.close()
