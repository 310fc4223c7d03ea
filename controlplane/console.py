"""The web console's static files, served by the control plane on the API's own origin.

The console (``console/``, built by Vite into ``console/dist``) is a single-page app: its
pages (``/``, ``/login``, ``/signup``, ``/callback``, ``/invitations/accept``,
``/orgs/...``) all answer with ``index.html``, and its scripts and styles live under
``/assets/`` with content-hashed names (cached for a year). Every response carries a
strict Content-Security-Policy: scripts, styles and connections from this origin only,
no inline script, no other origin, no framing. Routes exist only when
``console_dir`` is set (``TENANTRY_CP_CONSOLE_DIR``); every one is public (the files
hold no data; the API behind them checks every call).
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from controlplane.errors import NotFound
from controlplane.rbac.dependencies import Public

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# The single-page app's own paths (each answers with index.html).
PAGES = ("/", "/login", "/signup", "/callback", "/invitations/accept", "/orgs/{rest:path}")
# Vite's output names: name-hash.ext, nothing that could climb out of the folder.
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
IMMUTABLE = "public, max-age=31536000, immutable"


def router(directory: Path) -> APIRouter:
    """The console's routes over the built files in ``directory`` (``index.html`` and
    ``assets/``)."""
    index = directory / "index.html"
    assets = directory / "assets"
    public = [Depends(Public("the console's static files hold no data"))]
    r = APIRouter(tags=["console"], include_in_schema=False)

    async def page() -> Response:
        if not index.is_file():
            raise NotFound("the console is not built on this server")
        return FileResponse(
            index,
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
        )

    for path in PAGES:
        r.add_api_route(path, page, methods=["GET"], dependencies=public)

    @r.get("/assets/{name}", dependencies=public)
    async def asset(name: str) -> Response:
        file = assets / name
        if not ASSET_NAME.match(name) or ".." in name or not file.is_file():
            raise NotFound("no such file")
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(
            file, media_type=media, headers={**SECURITY_HEADERS, "Cache-Control": IMMUTABLE}
        )

    return r
