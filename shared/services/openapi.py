"""Every HTTP route, declared once, and the OpenAPI 3.1 document built from
those declarations and from the same pydantic models that validate requests,
plus every limit from ``shared.limits``.

A route's ``Operation`` says everything about it: path, method, key level,
access rule, parameters and responses. The function layer registers the
HTTP functions from the same declarations (``functions.routing``), so the
registration, this document and the access check cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from shared import limits
from shared.models.access import AuthMode
from shared.models.api import ErrorResponse
from shared.services.access import Rule

REF = "#/components/schemas/{model}"
Schema = type[BaseModel] | TypeAdapter[Any]
# host.json extensions.http.routePrefix (a unit test keeps the two equal).
ROUTE_PREFIX = "api"
LEVELS = ("anonymous", "function", "admin")


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # "path" or "query"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One HTTP route: what it is, who may call it, what it answers."""

    name: str  # the function's name, as the host lists it
    route: str  # the route template under the prefix, e.g. "v1/users/{user_id}"
    method: str  # "get", "post", "delete"
    summary: str
    responses: dict[int, tuple[str, str | None]]  # status -> (description, schema name)
    rule: Rule
    level: str = "function"  # the key level in AUTH_MODE=keys: anonymous, function or admin
    target: str | None = None  # the path parameter the rule judges
    discloses: str | None = None  # the access-log action of a successful read of one person
    # A live view in Redis named by the target ("progress", "lb", ...): its
    # version is the answer's ETag, and If-None-Match gets a 304.
    live_view: str | None = None
    request: str | None = None  # schema name of the JSON body
    parameters: tuple[Parameter, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"{self.name}: level must be one of {LEVELS}")
        if self.rule.public != (self.level == "anonymous"):
            raise ValueError(f"{self.name}: public rules and anonymous routes go together")
        if (self.rule.target is None) != (self.target is None):
            raise ValueError(f"{self.name}: rule {self.rule.name} needs target={self.target!r}")
        if self.discloses and self.rule.target != "person":
            raise ValueError(f"{self.name}: only a read of one person is a disclosure")
        if self.live_view and self.target is None:
            raise ValueError(f"{self.name}: a live view is named by the route's target")

    @property
    def path(self) -> str:
        # A catch-all route parameter ({*rest}) is an ordinary one in OpenAPI.
        return f"/{ROUTE_PREFIX}/{self.route}".replace("{*", "{")


Handler = Callable[..., Any]


@dataclass
class ApiDocument:
    """Collects schemas and routes; feature modules declare theirs."""

    schemas: dict[str, Schema] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)

    def schema(self, name: str, source: Schema) -> str:
        if name in self.schemas and self.schemas[name] is not source:
            raise ValueError(f"two schemas are called {name}")
        self.schemas[name] = source
        return name

    def route(self, operation: Operation) -> Callable[[Handler], Handler]:
        """Declare a route and the function that answers it (registered by the app)."""

        def register(handler: Handler) -> Handler:
            if operation.name in self.handlers:
                raise ValueError(f"route {operation.name} is declared twice")
            self.operations.append(operation)
            self.handlers[operation.name] = handler
            return handler

        return register


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


_SECURITY_SCHEMES: dict[str, Any] = {
    "functionKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "AUTH_MODE=keys: a function key (or query `code`). A signed-in "
        "principal sent along narrows what the key allows to that person's rules.",
    },
    "adminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "AUTH_MODE=keys: the master key; it satisfies every level.",
    },
    "appServiceAuthentication": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "AUTH_MODE=principal: an Entra ID token (or the sign-in cookie); App "
        "Service Authentication validates it and passes the principal in "
        "X-MS-CLIENT-PRINCIPAL, with app roles Student, Teacher, Admin or Service.",
    },
}

_REFUSALS = {
    401: ("No key (AUTH_MODE=keys) or no signed-in principal (AUTH_MODE=principal)", None),
    403: ("The access rule refused the caller, or the principal is unusable", "ErrorResponse"),
}


def _security(op: Operation, mode: AuthMode) -> list[dict[str, list[str]]]:
    if op.level == "anonymous":
        return []
    if mode is AuthMode.PRINCIPAL:
        return [{"appServiceAuthentication": []}]
    if op.level == "admin":
        return [{"adminKey": []}]
    return [{"functionKey": []}, {"adminKey": []}]


def _response(text: str, name: str | None) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=name)} if name else {"type": "object"}
    return {"description": text, "content": {"application/json": {"schema": schema}}}


def _operation(op: Operation, mode: AuthMode) -> dict[str, Any]:
    responses = dict(op.responses) | ({} if op.rule.public else _REFUSALS)
    if op.live_view:
        responses[304] = ("Unchanged since the ETag sent in If-None-Match", None)
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.name,
        "tags": list(op.tags),
        "responses": {
            str(status): {"description": text} if status == 401 else _response(text, name)
            for status, (text, name) in sorted(responses.items())
        },
        "security": _security(op, mode),
        "x-access-rule": {"name": op.rule.name, "allows": op.rule.text},
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
    return doc


def build_document(api: ApiDocument = API, mode: AuthMode = AuthMode.KEYS) -> dict[str, Any]:
    components: dict[str, Any] = {}
    for name, source in api.schemas.items():
        if isinstance(source, TypeAdapter):
            schema = source.json_schema(ref_template=REF)
        else:
            schema = source.model_json_schema(ref_template=REF)
        for nested, definition in schema.pop("$defs", {}).items():
            # Two models of one name (an event and a response) must not overwrite each other.
            if components.get(nested, definition) != definition:
                raise ValueError(f"two schemas are called {nested}")
            components[nested] = definition
        if components.get(name, schema) != schema:
            raise ValueError(f"two schemas are called {name}")
        components[name] = schema
    paths: dict[str, Any] = {}
    for op in api.operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op, mode)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Activity tracking API",
            "version": "1.0.0",
            "description": "Records student and teacher activity; every limit is under "
            f"x-limits; every operation names its access rule (x-access-rule). AUTH_MODE={mode}.",
            "x-limits": _limits(),
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _SECURITY_SCHEMES},
    }


@lru_cache(maxsize=2)
def openapi_json(mode: AuthMode = AuthMode.KEYS) -> str:
    """The document for an auth mode, serialized once per process."""
    import json

    return json.dumps(build_document(mode=mode), indent=None)
