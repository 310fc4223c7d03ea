"""The ingestion API's OpenAPI document describes what the code does (pure)."""

from __future__ import annotations

import jsonschema
import msgspec
import pytest

from ingestion import events
from ingestion.openapi import Accepted, document
from tenantry.errors import ERROR_SCHEMA, error_body

DOC = document(max_events=500, max_body_bytes=1 << 20)
SCHEMAS = DOC["components"]["schemas"]


def test_error_body_has_the_documented_shape() -> None:
    jsonschema.validate(error_body("x", "y", request_id="r"), ERROR_SCHEMA)
    jsonschema.validate(error_body("x", "y", request_id=None, errors=[1]), ERROR_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):  # the schema has teeth
        jsonschema.validate({"error": {"message": "no code"}}, ERROR_SCHEMA)


def test_the_event_schema_is_the_decoders() -> None:
    described = SCHEMAS["Event"]
    fields = msgspec.structs.fields(events.Event)
    assert set(described["properties"]) == {f.encode_name for f in fields}
    assert set(described["required"]) == {f.encode_name for f in fields if f.required}
    assert described["additionalProperties"] is False  # forbid_unknown_fields
    assert described["properties"]["event"]["maxLength"] == events.MAX_EVENT_NAME


def test_limits_and_the_202_body_are_those_served() -> None:
    post = DOC["paths"]["/v1/events"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["maxItems"] == 500
    assert set(SCHEMAS["Accepted"]["properties"]) == set(Accepted.__struct_fields__)
