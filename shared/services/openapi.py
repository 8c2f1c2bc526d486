"""The OpenAPI 3.1 document, generated from the same pydantic models that
validate requests, plus every limit from ``shared.limits``.

Each function module declares its own operations (``API.add``) next to its
routes; function_app.py imports them all before the document is first built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from shared import limits
from shared.models.api import ErrorResponse

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

API.schema("ErrorResponse", ErrorResponse)


def uuid_path(name: str) -> Parameter:
    return Parameter(name, "path", {"type": "string", "format": "uuid"}, f"the {name} (UUID)")


def limit_query(default: int, maximum: int) -> Parameter:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
    return Parameter("limit", "query", schema, "how many entries")


BAD_PARAM = {400: ("A path or query parameter breaks its rule", "ErrorResponse")}
UNAVAILABLE = {503: ("Both Redis and PostgreSQL are unavailable", "ErrorResponse")}


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
