"""The OpenAPI 3.1 document, generated from the same pydantic models that
validate requests, plus every limit from ``shared.limits``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from shared import limits
from shared.models.api import (
    ErrorResponse,
    EventBatch,
    HealthResponse,
    IngestResponse,
    Leaderboard,
    LiveSession,
    Notifications,
    StudentProgress,
)
from shared.models.events import Event

REF = "#/components/schemas/{model}"
Schema = type[BaseModel] | TypeAdapter[Any]


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # "path" or "query"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    responses: dict[int, tuple[str, str | None]]  # status -> (description, schema name)
    auth: str = "function"  # "anonymous", "function" or "admin"
    request: str | None = None  # schema name of the JSON body
    parameters: tuple[Parameter, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass
class ApiDocument:
    """Collects schemas and operations; feature modules register theirs."""

    schemas: dict[str, Schema] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)

    def schema(self, name: str, source: Schema) -> str:
        self.schemas[name] = source
        return name

    def add(self, operation: Operation) -> None:
        self.operations.append(operation)


API = ApiDocument()

_ERRORS = {
    400: ("Body is not JSON, or not an event / {events: [...]}", "ErrorResponse"),
    413: ("Over the event count or byte limit", "ErrorResponse"),
    415: ("Content-Type is not application/json", "ErrorResponse"),
}

API.schema("Event", TypeAdapter(Event))
API.schema("EventBatch", EventBatch)
API.schema("IngestResponse", IngestResponse)
API.schema("ErrorResponse", ErrorResponse)
API.schema("HealthResponse", HealthResponse)
API.schema("IngestRequest", TypeAdapter(Event | EventBatch))
API.add(
    Operation(
        path="/api/v1/events",
        method="post",
        summary="Record one event or a batch of events",
        request="IngestRequest",
        responses={
            202: ("At least one event accepted (queued durably)", "IngestResponse"),
            422: ("No event valid", "IngestResponse"),
            **_ERRORS,
            503: ("Queue unavailable; nothing accepted; retry after Retry-After", "ErrorResponse"),
        },
        tags=("ingest",),
    )
)
API.add(
    Operation(
        path="/api/v1/health",
        method="get",
        summary="Status of each dependency",
        auth="anonymous",
        responses={
            200: ("Every dependency is up", "HealthResponse"),
            503: ("A dependency is down", "HealthResponse"),
        },
        tags=("meta",),
    )
)
API.add(
    Operation(
        path="/api/v1/openapi.json",
        method="get",
        summary="This document",
        auth="anonymous",
        responses={200: ("The OpenAPI 3.1 document", None)},
        tags=("meta",),
    )
)


def uuid_path(name: str) -> Parameter:
    return Parameter(name, "path", {"type": "string", "format": "uuid"}, f"the {name} (UUID)")


def limit_query(default: int, maximum: int) -> Parameter:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
    return Parameter("limit", "query", schema, "how many entries")


_BAD_PARAM = {400: ("A path or query parameter breaks its rule", "ErrorResponse")}
_UNAVAILABLE = {503: ("Both Redis and PostgreSQL are unavailable", "ErrorResponse")}

for _name, _model in (
    ("StudentProgress", StudentProgress),
    ("Leaderboard", Leaderboard),
    ("Notifications", Notifications),
    ("LiveSession", LiveSession),
):
    API.schema(_name, _model)

API.add(
    Operation(
        path="/api/v1/students/{student_id}/progress",
        method="get",
        summary="A student's lesson progress, merged order-independently",
        parameters=(uuid_path("student_id"),),
        responses={200: ("Progress per lesson", "StudentProgress"), **_BAD_PARAM, **_UNAVAILABLE},
        tags=("realtime",),
    )
)
API.add(
    Operation(
        path="/api/v1/quizzes/{quiz_id}/leaderboard",
        method="get",
        summary="A quiz's leaderboard",
        parameters=(
            uuid_path("quiz_id"),
            limit_query(limits.LEADERBOARD_DEFAULT_LIMIT, limits.LEADERBOARD_MAX_LIMIT),
        ),
        responses={200: ("Ranked entries", "Leaderboard"), **_BAD_PARAM, **_UNAVAILABLE},
        tags=("realtime",),
    )
)
API.add(
    Operation(
        path="/api/v1/users/{user_id}/notifications",
        method="get",
        summary="Replies to and likes of the user's posts by others, newest first",
        parameters=(
            uuid_path("user_id"),
            limit_query(limits.NOTIFICATIONS_DEFAULT_LIMIT, limits.NOTIFICATIONS_MAX_LIMIT),
        ),
        responses={200: ("Notifications", "Notifications"), **_BAD_PARAM, **_UNAVAILABLE},
        tags=("realtime",),
    )
)
API.add(
    Operation(
        path="/api/v1/live/sessions/{session_id}",
        method="get",
        summary="A live class session's teachers and their engagement",
        parameters=(uuid_path("session_id"),),
        responses={
            200: ("The session", "LiveSession"),
            404: ("No such session", "ErrorResponse"),
            **_BAD_PARAM,
            **_UNAVAILABLE,
        },
        tags=("realtime",),
    )
)


def _limits() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dir(limits):
        if not name.isupper():
            continue
        value = getattr(limits, name)
        if not isinstance(value, int | float | str | timedelta | datetime):
            continue  # an import such as UTC, not a limit
        if isinstance(value, timedelta):
            value = value.total_seconds()
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[name.lower()] = value
    return out


def _operation(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_')}".replace("{", "")
        .replace("}", "")
        .replace(".", "_"),
        "tags": list(op.tags),
        "responses": {
            str(status): {"description": text}
            | (
                {"content": {"application/json": {"schema": {"$ref": REF.format(model=name)}}}}
                if name
                else {"content": {"application/json": {"schema": {"type": "object"}}}}
            )
            for status, (text, name) in op.responses.items()
        },
    }
    if op.parameters:
        doc["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in op.parameters
        ]
    if op.request:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=op.request)}}},
        }
    doc["security"] = [] if op.auth == "anonymous" else [{op.auth + "Key": []}, {"adminKey": []}]
    if op.auth == "admin":
        doc["security"] = [{"adminKey": []}]
    return doc


def build_document(api: ApiDocument = API) -> dict[str, Any]:
    components: dict[str, Any] = {}
    for name, source in api.schemas.items():
        if isinstance(source, TypeAdapter):
            schema = source.json_schema(ref_template=REF)
        else:
            schema = source.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[name] = schema
    paths: dict[str, Any] = {}
    for op in api.operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Activity tracking API",
            "version": "1.0.0",
            "description": "Records student and teacher activity; every limit is under x-limits.",
            "x-limits": _limits(),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "adminKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            },
        },
    }


@lru_cache(maxsize=1)
def openapi_json() -> str:
    """The document, serialized once per process."""
    import json

    return json.dumps(build_document(), indent=None)
