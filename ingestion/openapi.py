"""The ingestion API as an OpenAPI 3.1 document, made from the code that serves it.

Served at ``GET /openapi.json`` for producers and SDK generators, and fuzzed by the
suite (schemathesis, ``tests/integration/ingestion/test_fuzz.py``). Nothing in it is
written twice: the event's schema is msgspec's own for `ingestion.events.Event` (the
decoder that validates every event), the 202 body's for `Accepted` (what the handler
encodes), the error shape is `tenantry.errors.ERROR_SCHEMA`, and the header names,
media types and limits are the constants the handler reads.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ingestion import body, events
from tenantry.errors import ERROR_SCHEMA, REQUEST_ID_HEADER

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_IDEMPOTENCY_KEY = 255
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/jsonlines"}
)
JSON_TYPES = frozenset({"application/json"})


class Accepted(msgspec.Struct, frozen=True):
    """The 202 body: how many events the batch held, and its id (also in every row's
    ``batch_id`` column)."""

    accepted: int
    batch_id: str


_REF = "#/components/schemas/{name}"

_ERRORS = {
    "400": "malformed body or header: an encoding that isn't what it says, a bad Idempotency-Key",
    "401": "no API key, or not a valid one",
    "403": "the API key is not for this tenant, or expired",
    "413": "the body is larger than the limit, sent or decoded",
    "415": "a Content-Type or Content-Encoding the service does not take",
    "422": "a batch with invalid events (each listed, nothing stored), or a "
    "different batch under an Idempotency-Key already used",
    "429": "the API key's rate limit or the tenant's backlog is reached: retry after Retry-After",
    "503": "API keys or the event buffer cannot be reached: retry after Retry-After",
}


def _describable(struct: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """``struct`` with the same fields, names, types, constraints and defaults, except that
    a ``msgspec.Raw`` field (JSON kept as text, which msgspec cannot describe) is
    described as the JSON object it must hold (`events.prepare` checks that it is one)."""
    fields: list[Any] = []
    for field in msgspec.structs.fields(struct):
        if field.type is msgspec.Raw:
            fields.append((field.encode_name, dict[str, Any], msgspec.field(default_factory=dict)))
        elif field.required:
            fields.append((field.encode_name, field.type))
        else:
            fields.append((field.encode_name, field.type, field.default))
    return msgspec.defstruct(struct.__name__, fields, forbid_unknown_fields=True)


def document(*, max_events: int, max_body_bytes: int) -> dict[str, Any]:
    """The OpenAPI document of a service with these limits."""
    (event_ref, accepted_ref), components = msgspec.json.schema_components(
        [_describable(events.Event), Accepted], ref_template=_REF
    )
    components["Error"] = ERROR_SCHEMA
    batch = {"type": "array", "items": event_ref, "minItems": 1, "maxItems": max_events}
    error = {"application/json": {"schema": {"$ref": _REF.format(name="Error")}}}
    retry = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    content: dict[str, Any] = {t: {"schema": batch} for t in sorted(JSON_TYPES)}
    ndjson = {"type": "string", "description": "one Event object per line"}
    content.update({t: {"schema": ndjson} for t in sorted(NDJSON_TYPES)})
    responses: dict[str, Any] = {
        "202": {
            "description": "the batch is in the tenant's buffer and will be written",
            "content": {"application/json": {"schema": accepted_ref}},
            "headers": {REPLAYED_HEADER: {"schema": {"type": "string", "enum": ["true"]}}},
        },
        **{
            code: {
                "description": text,
                "content": error,
                **({"headers": retry} if code in ("429", "503") else {}),
            }
            for code, text in _ERRORS.items()
        },
    }
    header = {"in": "header", "required": False}
    parameters = [
        {
            **header,
            "name": IDEMPOTENCY_HEADER,
            "description": "a retried batch under the same key is stored once",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
        },
        {
            **header,
            "name": "Content-Encoding",
            "schema": {"type": "string", "enum": list(body.SUPPORTED)},
        },
        {**header, "name": REQUEST_ID_HEADER, "schema": {"type": "string", "maxLength": 64}},
    ]
    health = {
        "200": {"description": "up", "content": {"application/json": {"schema": {}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tenantry ingestion",
            "version": "v1",
            "description": f"Events in batches of up to {max_events}, bodies up to "
            f"{max_body_bytes} bytes (decoded).",
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "postEvents",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "parameters": parameters,
                    "requestBody": {"required": True, "content": content},
                    "responses": responses,
                }
            },
            "/healthz": {"get": {"operationId": "healthz", "responses": health}},
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "responses": {
                        **health,
                        "503": {
                            "description": "Redis unreachable",
                            "content": {"application/json": {"schema": {}}},
                        },
                    },
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
