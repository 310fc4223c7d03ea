"""The one JSON error shape of every Tenantry HTTP service, and request ids.

Every error the control plane and the ingestion service answer (except where a standard
fixes another shape: OAuth 2.0's token endpoint) is

    {"error": {"code": "<machine-readable>", "message": "<for people>",
               "requestId": "<the request's id>", ...details}}

with the request id also in the `X-Request-ID` response header. A client's own
`X-Request-ID` is kept when it is a short token (`request_id`), so a caller can follow
a request through its logs and ours.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(incoming: str | None) -> str:
    """The caller's request id when it is a short token, else a new one."""
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "requestId"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable"},
                "message": {"type": "string", "description": "for people"},
                "requestId": {"type": ["string", "null"]},
            },
            "additionalProperties": True,
        }
    },
    "additionalProperties": False,
}
"""The shape `error_body` makes, as JSON Schema (API descriptions; a test checks that
`error_body`'s output validates)."""


def error_body(
    code: str, message: str, *, request_id: str | None, **details: Any
) -> dict[str, Any]:
    """The error shape: `code`, `message`, `requestId`, then any `details`."""
    return {"error": {"code": code, "message": message, "requestId": request_id, **details}}
