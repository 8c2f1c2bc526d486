"""The HTTP functions, registered from their declarations (``API.route``).

For every declared route this builds the function the host runs: identify
the caller, check the route's access rule before any data is read, run the
handler, record the disclosure or the refusal in the access log, and turn
expected failures into clear 4xx/503 answers. function_app.py calls
``http_blueprint`` when it is imported, so the auth level in the functions'
metadata follows AUTH_MODE as the host sees it (keys: the declared level;
principal: anonymous at the host, the app requires a principal).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import azure.functions as func
from pydantic import BaseModel
from redis.exceptions import RedisError

from shared import telemetry
from shared.errors import AccessDenied, InvalidPrincipal, Unauthenticated
from shared.http import error_response, handle, json_response, path_uuid, status_of
from shared.models.access import AuthMode, Caller, Role
from shared.repositories.postgres import get_postgres
from shared.repositories.realtime import get_realtime
from shared.services import access_log
from shared.services.access import authorize
from shared.services.access_facts import get_access_facts
from shared.services.openapi import ApiDocument, Handler, Operation
from shared.services.principals import identify, refused_principal_accessor
from shared.settings import Settings

log = logging.getLogger(__name__)

PRINCIPAL_HEADER = "x-ms-client-principal"
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"
ANONYMOUS = Caller(None, frozenset(), "anonymous")
_LEVELS = {
    "anonymous": func.AuthLevel.ANONYMOUS,
    "function": func.AuthLevel.FUNCTION,
    "admin": func.AuthLevel.ADMIN,
}


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: who asked, and as which role the rule let them in."""

    req: func.HttpRequest
    caller: Caller
    granted: Role | None  # None on public routes
    mode: AuthMode

    def path_uuid(self, name: str) -> uuid.UUID:
        return path_uuid(self.req, name)


def resource(req: func.HttpRequest) -> str:
    """The path that was asked for (the query is left out: it may carry the key)."""
    return urlsplit(str(req.url)).path[:500]


def host_level(operation: Operation, mode: AuthMode) -> func.AuthLevel:
    """The auth level the host enforces for a route under ``mode``."""
    return func.AuthLevel.ANONYMOUS if mode is AuthMode.PRINCIPAL else _LEVELS[operation.level]


def host_level_default(mode: AuthMode) -> func.AuthLevel:
    """The app-wide default level (every route states its own; this is for any other)."""
    return func.AuthLevel.ANONYMOUS if mode is AuthMode.PRINCIPAL else func.AuthLevel.FUNCTION


def http_blueprint(api: ApiDocument, settings: Settings) -> func.Blueprint:
    """A blueprint with one HTTP function per declared route."""
    bp = func.Blueprint()
    for operation in api.operations:
        function = _function(operation, api.handlers[operation.name], settings)
        route = bp.route(
            route=operation.route,
            methods=[operation.method.upper()],
            auth_level=host_level(operation, settings.auth_mode),
        )
        bp.function_name(operation.name)(route(function))
    return bp


def _function(
    operation: Operation, handler: Handler, settings: Settings
) -> Callable[[func.HttpRequest], func.HttpResponse]:
    mode, claim = settings.auth_mode, settings.auth_user_id_claim

    def endpoint(req: func.HttpRequest) -> func.HttpResponse:
        with telemetry.span(f"http {operation.name}", route=operation.route) as current:
            response = serve(operation, handler, req, mode=mode, user_id_claim=claim)
            current.set_attribute("http.response.status_code", response.status_code)
            return response

    endpoint.__name__ = endpoint.__qualname__ = operation.name
    endpoint.__doc__ = operation.summary
    return endpoint


def _answer(result: func.HttpResponse | BaseModel) -> func.HttpResponse:
    return result if isinstance(result, func.HttpResponse) else json_response(result)


def _subject(operation: Operation, req: func.HttpRequest) -> uuid.UUID | None:
    """The person a route is about, when it is about one (for the access log)."""
    if operation.rule.target != "person" or operation.target is None:
        return None
    try:
        return uuid.UUID(req.route_params.get(operation.target, ""))
    except ValueError:
        return None


def _refuse(
    operation: Operation,
    req: func.HttpRequest,
    accessor: str,
    rule: str,
    refusal: AccessDenied | InvalidPrincipal,
) -> func.HttpResponse:
    """403, no data; the attempt goes to the access log with who, what and which rule."""
    access_log.record(
        get_postgres(),
        subject_id=_subject(operation, req),
        accessor=accessor,
        action=operation.discloses or operation.name,
        resource=resource(req),
        outcome=access_log.REFUSED,
        rule=rule,
    )
    message = refusal.message
    log.warning("refused %s %s for %s: %s", operation.name, resource(req), accessor, message)
    return error_response(status_of(refusal), message)


def _revalidate(tag: str) -> dict[str, str]:
    # Private (one person's view), kept but revalidated on every use.
    return {"ETag": tag, "Cache-Control": "private, no-cache"}


def _etag(
    operation: Operation,
    req: func.HttpRequest,
    caller: Caller,
    granted: Role | None,
    target: uuid.UUID | None,
) -> str | None:
    """The live view's ETag: its version in Redis, read before the view is built
    (a change in between only makes the next poll fetch again), and what else
    shapes the answer: the query, and who asks as what. None without Redis."""
    if operation.live_view is None or target is None:
        return None
    try:
        version = get_realtime().view_version(operation.live_view, str(target))
    except RedisError:
        return None
    variant = f"{urlsplit(str(req.url)).query}|{caller.user_id}|{granted}"
    return f'"{version}-{hashlib.sha256(variant.encode()).hexdigest()[:12]}"'


def serve(
    operation: Operation,
    handler: Handler,
    req: func.HttpRequest,
    *,
    mode: AuthMode,
    user_id_claim: str,
) -> func.HttpResponse:
    """Answer one request to a declared route."""
    if operation.rule.public:
        return handle(lambda: _answer(handler(Call(req, ANONYMOUS, None, mode))))
    principal = req.headers.get(PRINCIPAL_HEADER)
    try:
        caller = identify(
            principal,
            req.headers.get(KEY_HEADER) or req.params.get(KEY_QUERY),
            mode=mode,
            level=operation.level,
            user_id_claim=user_id_claim,
        )
    except Unauthenticated as exc:
        # Nobody to name: not a database row per anonymous request, a log line.
        log.warning("no principal for %s %s", operation.name, resource(req))
        return error_response(status_of(exc), exc.message)
    except InvalidPrincipal as exc:
        accessor = refused_principal_accessor(principal or "")
        return _refuse(operation, req, accessor, "principal", exc)
    return handle(lambda: _authorized(operation, handler, req, caller, mode))


def _authorized(
    operation: Operation, handler: Handler, req: func.HttpRequest, caller: Caller, mode: AuthMode
) -> func.HttpResponse:
    """The answer to a caller who is known: the rule first, then the handler."""
    target = path_uuid(req, operation.target) if operation.target else None
    try:
        granted = authorize(
            operation.rule, caller, target, get_access_facts(), level=operation.level
        )
    except AccessDenied as exc:
        return _refuse(operation, req, caller.accessor, exc.rule, exc)
    tag = _etag(operation, req, caller, granted, target)
    if tag is not None and tag in (req.headers.get("If-None-Match") or ""):
        # Unchanged: nothing is disclosed that the caller does not hold already.
        return func.HttpResponse(status_code=304, headers=_revalidate(tag))
    response = _answer(handler(Call(req, caller, granted, mode)))
    if tag is not None and response.status_code == 200:
        for name, value in _revalidate(tag).items():
            response.headers[name] = value
    if operation.discloses and response.status_code < 400:
        access_log.record(
            get_postgres(),
            subject_id=target,
            accessor=caller.accessor,
            action=operation.discloses,
            resource=resource(req),
        )
    return response
