"""Billing integration fixtures: the control-plane servers (re-exported from the
control-plane conftest, so both suites start PostgreSQL and Redis the same way) and
one running app with an organisation, its owner and the internal service token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from controlplane.billing.access import BillingSettings
from controlplane.settings import Settings
from tenantry import internal_api
from tests.integration.controlplane.conftest import (  # noqa: F401  (fixtures)
    bearer,
    database,
    new_org,
    postgres,
    redis_db,
    redis_server,
    serve,
    settings,
    sign_up_and_login,
    template_db,
)

TOKEN = "internal-test-token-0123456789"


@dataclass
class Billing:
    app: FastAPI
    http: httpx.AsyncClient
    database_url: str
    org_id: str
    owner: dict[str, str]
    internal_port: int

    @property
    def service(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def configure(self, **values: object) -> None:
        self.app.state.billing_settings = BillingSettings(internal_token=TOKEN, **values)  # type: ignore[arg-type]

    def url(self, path: str) -> str:
        return f"/v1/orgs/{self.org_id}{path}"

    @property
    def service_usage(self) -> str:
        """The route the ingestion pods and the operator send usage to: on the internal
        listener (the app's internal port in the request's URL, as uvicorn would put the
        port of the socket it accepted the request on into the ASGI scope)."""
        internal = f"http://cp.test:{self.internal_port}"
        return internal + internal_api.usage_path(self.org_id)


@pytest.fixture
async def billing(settings: Settings) -> AsyncIterator[Billing]:  # noqa: F811
    async with serve(settings) as (app, http):
        owner = await sign_up_and_login(http)
        org_id = await new_org(http, owner)
        found = Billing(
            app, http, settings.database_url, org_id, bearer(owner), settings.internal_port
        )
        found.configure()
        yield found
