"""What the HTTP functions share: parameter parsing, response shapes, and the
answer to each domain error (``shared.errors``) and store outage."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import psycopg
from azure.core.exceptions import AzureError
from pydantic import BaseModel
from redis.exceptions import RedisError

from shared.errors import (
    AccessDenied,
    DomainError,
    InvalidInput,
    InvalidPrincipal,
    NotFound,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from shared.services.openapi import Parameter
from shared.settings import get_settings

JSON = "application/json"
log = logging.getLogger(__name__)


# Each domain error's status; a subclass takes its own before its base's.
STATUS: dict[type[DomainError], int] = {
    DomainError: 400,
    InvalidInput: 400,
    Unauthenticated: 401,
    InvalidPrincipal: 403,
    AccessDenied: 403,
    NotFound: 404,
    TooLarge: 413,
    UnsupportedMediaType: 415,
}


def status_of(exc: DomainError) -> int:
    """The HTTP status that answers ``exc``."""
    return next(STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS)


def json_response(
    payload: BaseModel | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    body = (
        payload.model_dump_json()
        if isinstance(payload, BaseModel)
        else json.dumps(payload, default=str, ensure_ascii=False)
    )
    return func.HttpResponse(body, status_code=status, mimetype=JSON, headers=headers)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return json_response({"error": message}, status=status, headers=headers)


def unavailable(message: str) -> func.HttpResponse:
    """503 with Retry-After: a dependency is down; the client should retry."""
    retry_after = str(get_settings().retry_after_seconds)
    return error_response(503, message, headers={"Retry-After": retry_after})


def path_uuid(req: func.HttpRequest, name: str) -> uuid.UUID:
    raw = req.route_params.get(name, "")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a UUID, got {raw[:80]!r}", field=name, rule="uuid"
        ) from None


def query_int(req: func.HttpRequest, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an integer from {minimum} to {maximum}", field=name, rule="integer"
        ) from None
    if not minimum <= value <= maximum:
        raise InvalidInput(
            f"{name} must be from {minimum} to {maximum}, got {value}", field=name, rule="range"
        )
    return value


def query_declared(req: func.HttpRequest, parameter: Parameter) -> int:
    """An integer query parameter, with the default and range its OpenAPI declaration states.

    The declaration is the one source of the rule, so the document and the
    check cannot drift apart.
    """
    schema = parameter.schema
    return query_int(req, parameter.name, schema["default"], schema["minimum"], schema["maximum"])


def handle(action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Run a read endpoint, turning expected failures into clear 4xx/503 answers."""
    try:
        return action()
    except DomainError as exc:
        return error_response(status_of(exc), exc.message)
    except psycopg.OperationalError as exc:
        log.error("PostgreSQL unavailable: %s", exc)
        return unavailable("the database is unavailable; retry later")
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        # A deployment that skipped `python -m shared.migrate`: the operator's
        # problem, not the caller's, and it clears once the migrations run.
        log.error("database schema is behind the code: %s", exc)
        return unavailable("the database schema is out of date; the operator must apply migrations")
    except (RedisError, AzureError) as exc:
        # Reads fall back from Redis to PostgreSQL themselves; what arrives here
        # needs every store (the privacy operations): retrying is safe.
        log.error("store unavailable: %s", exc)
        return unavailable("a store is unavailable; retry (the operation is idempotent)")


def query_time(req: func.HttpRequest, name: str) -> datetime | None:
    """An optional ISO 8601 timestamp with a time zone, in UTC; None when absent."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO 8601 timestamp with a time zone, got {raw[:80]!r}",
            field=name,
            rule="timestamp",
        ) from None
    if value.tzinfo is None:
        raise InvalidInput(
            f"{name} must carry a time zone (e.g. Z or +02:00), got {raw[:80]!r}",
            field=name,
            rule="time zone",
        )
    return value.astimezone(UTC)


def query_choice(req: func.HttpRequest, name: str, choices: Sequence[str], default: str) -> str:
    """An optional query parameter that must be one of ``choices``."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise InvalidInput(
            f"{name} must be one of {', '.join(choices)}, got {raw[:80]!r}",
            field=name,
            rule="choice",
        )
    return str(raw)
