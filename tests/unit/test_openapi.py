"""The OpenAPI document: valid 3.1, generated from the models, carrying every limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

import function_app  # noqa: F401 - importing the app registers every operation
from shared import limits
from shared.models.access import AuthMode
from shared.models.events import EVENT_TYPES
from shared.services.access import AGGREGATES, PUBLIC, RULES, STUDENT_RECORD
from shared.services.openapi import ROUTE_PREFIX, Operation, build_document, openapi_json


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
                    trigger.route.replace("{*", "{"),  # a catch-all is a plain parameter there
                    str(method.value if hasattr(method, "value") else method),
                ) in documented


def test_limits_are_published() -> None:
    published = build_document()["info"]["x-limits"]
    assert published["max_events_per_request"] == limits.MAX_EVENTS_PER_REQUEST
    assert published["max_request_bytes"] == limits.MAX_REQUEST_BYTES
    assert published["max_content_chars"] == limits.MAX_CONTENT_CHARS
    assert published["max_future_skew"] == limits.MAX_FUTURE_SKEW.total_seconds()
    # The real-time store's expiry (seconds) and sizes are limits too.
    for name in (
        "DEDUPE_TTL",
        "PROGRESS_TTL",
        "LEADERBOARD_TTL",
        "NOTIFICATIONS_TTL",
        "LIVE_SESSION_TTL",
        "POST_AUTHOR_TTL",
        "PENDING_NOTIFICATION_TTL",
        "NOTIFICATIONS_KEPT",
        "REBUILD_CHUNK",
    ):
        assert published[name.lower()] == getattr(limits, name), name
    schemas = build_document()["components"]["schemas"]
    content = schemas["ForumActivity"]["properties"]["content"]
    assert {"maxLength": limits.MAX_CONTENT_CHARS}.items() <= next(
        option for option in content["anyOf"] if option.get("type") == "string"
    ).items()


@pytest.mark.parametrize("mode", list(AuthMode))
def test_every_route_states_its_rule_security_and_refusals(mode: AuthMode) -> None:
    document = build_document(mode=mode)
    validate(document)
    rules = {rule.name: rule.text for rule in RULES}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            rule = operation["x-access-rule"]
            assert rules[rule["name"]] == rule["allows"], where
            if rule["name"] == "public":
                assert operation["security"] == [], where
                assert "401" not in operation["responses"], where
                continue
            assert {"401", "403"} <= set(operation["responses"]), where
            if mode is AuthMode.PRINCIPAL:
                assert operation["security"] == [{"appServiceAuthentication": []}], where
            elif path == "/api/v1/users/{user_id}" or path.endswith(("/export", "/disclosures")):
                assert operation["security"] == [{"adminKey": []}], where
            else:
                assert operation["security"] == [{"functionKey": []}, {"adminKey": []}], where


def test_the_route_prefix_is_host_jsons() -> None:
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ROUTE_PREFIX


def test_a_route_declaration_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="public rules and anonymous routes"):
        Operation(name="x", route="x", method="get", summary="x", responses={}, rule=PUBLIC)
    with pytest.raises(ValueError, match="needs target"):
        Operation(name="x", route="x", method="get", summary="x", responses={}, rule=STUDENT_RECORD)
    with pytest.raises(ValueError, match="only a read of one person"):
        Operation(
            name="x",
            route="x/{a}",
            method="get",
            summary="x",
            responses={},
            rule=AGGREGATES,
            discloses="x",
        )


def test_no_two_models_share_a_schema_name() -> None:
    """An event and a response called alike once overwrote the event's schema."""
    schemas = build_document()["components"]["schemas"]
    assert "student_id" in schemas["LessonProgress"]["properties"]  # the event
    assert "students" in schemas["LessonStudents"]["properties"]  # the lesson's live view
    from shared.services.openapi import ApiDocument

    document = ApiDocument()
    document.schema("Thing", build_document.__class__)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="two schemas are called Thing"):
        document.schema("Thing", int)  # type: ignore[arg-type]
