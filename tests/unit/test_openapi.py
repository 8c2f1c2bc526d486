"""The OpenAPI document: valid 3.1, generated from the models, carrying every limit."""

from __future__ import annotations

import json
from typing import Any

from openapi_spec_validator import validate

import function_app  # noqa: F401 - importing the app registers every operation
from shared import limits
from shared.models.events import EVENT_TYPES
from shared.services.openapi import build_document, openapi_json


def test_document_is_valid_openapi_3_1_and_serializable() -> None:
    document = json.loads(openapi_json())
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_event_type_has_a_schema_from_its_model() -> None:
    schemas = build_document()["components"]["schemas"]
    titles = {schema.get("title") for schema in schemas.values()}
    for name in ("LessonProgress", "QuizAttempt", "ForumActivity", "ContentActivity"):
        assert name in titles
    mapping = schemas["Event"]["discriminator"]["mapping"]
    assert set(mapping) == set(EVENT_TYPES)


def test_every_http_route_is_documented(app_functions: list[Any]) -> None:
    documented = {
        (path.removeprefix("/api/"), method.upper())
        for path, methods in build_document()["paths"].items()
        for method in methods
    }
    for fn in app_functions:
        trigger = fn.get_trigger()
        if trigger.type == "httpTrigger":
            for method in trigger.methods:
                assert (
                    trigger.route,
                    str(method.value if hasattr(method, "value") else method),
                ) in documented


def test_limits_are_published() -> None:
    published = build_document()["info"]["x-limits"]
    assert published["max_events_per_request"] == limits.MAX_EVENTS_PER_REQUEST
    assert published["max_request_bytes"] == limits.MAX_REQUEST_BYTES
    assert published["max_content_chars"] == limits.MAX_CONTENT_CHARS
    assert published["max_future_skew"] == limits.MAX_FUTURE_SKEW.total_seconds()
    schemas = build_document()["components"]["schemas"]
    content = schemas["ForumActivity"]["properties"]["content"]
    assert {"maxLength": limits.MAX_CONTENT_CHARS}.items() <= next(
        option for option in content["anyOf"] if option.get("type") == "string"
    ).items()
