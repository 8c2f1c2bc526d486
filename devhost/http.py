"""The HTTP front end: CORS and Easy Auth, routing, keys, conversion both ways.

Served by aiohttp's low-level server: aiohttp is already a pinned dev
dependency (uvicorn is not), its server, the async storage client and the
queue pollers share one event loop, and the low-level `web.Server` skips the
application/middleware layers, so a request costs parsing, one route lookup
and one thread-pool hop for a synchronous function.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import azure.functions as func
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion11
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from devhost.admin import AdminApi
from devhost.auth import Keys, presented_key
from devhost.cors import Cors, is_preflight
from devhost.easyauth import PRINCIPAL_PREFIX, EasyAuth
from devhost.invoker import HOST_API_REASON, Invoker
from devhost.loader import FunctionSpec, HttpTrigger
from devhost.routes import MethodNotAllowed, Router
from devhost.settings import BODY_LIMIT_SETTING, DEFAULT_BODY_LIMIT
from devhost.shutdown import CLOSE_TIMEOUT, InFlight

log = logging.getLogger("devhost")

# Left to the server to set: the body is re-framed here.
_HOP_HEADERS = frozenset(("content-length", "transfer-encoding", "connection"))


def route_template(route_prefix: str, route: str) -> str:
    """The full route a function is served at (`api/` + its route)."""
    return "/".join(part for part in (route_prefix.strip("/"), route.strip("/")) if part)


class HttpFrontend:
    """Answers every request: CORS, /.auth, admin API, HTTP functions, 404/405/401/413/500.

    Like the real host it sends empty bodies for its own 401, 404 and 405; 413 (and 503
    while stopping) carry `{"error": ...}`, the shape the app's own errors have.
    """

    def __init__(
        self,
        functions: list[FunctionSpec],
        *,
        route_prefix: str,
        keys: Keys,
        invoker: Invoker,
        admin: AdminApi,
        easy_auth: EasyAuth,
        in_flight: InFlight,
        cors: Cors | None = None,
        body_limit: int = DEFAULT_BODY_LIMIT,
    ) -> None:
        self.body_limit = body_limit
        self.stopping = False  # set at shutdown: any request still arriving gets a 503
        self._in_flight = in_flight
        self._keys = keys
        self._invoker = invoker
        self._admin = admin
        self._easy_auth = easy_auth
        self._cors = cors
        self._router: Router[FunctionSpec] = Router()
        for fn in functions:
            if isinstance(fn.trigger, HttpTrigger):
                template = route_template(route_prefix, fn.trigger.route)
                self._router.add(template, fn.trigger.methods, fn)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.stopping:
            return _closing(_error(503, "the host is shutting down"))
        path = request.raw_path.split("?", 1)[0]  # the query may hold a key: never logged
        with self._in_flight.track(f"HTTP {request.method} {path}"):
            return await self._handle(request)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        cors = self._cors
        if cors is None or (origin := request.headers.get(hdrs.ORIGIN)) is None:
            return await self._respond(request)
        # Like func start's CORS middleware: preflights never reach routing, keys or functions.
        if is_preflight(request.method, request.headers):
            return cors.preflight(origin, request.headers)
        response = await self._respond(request)
        cors.decorate(origin, response)
        return response

    async def _respond(self, request: web.BaseRequest) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        lowered = raw_path.lower()
        # The host reserves /admin, and Easy Auth /.auth, whatever the route prefix.
        if lowered.startswith("/admin/"):
            return await self._admin.handle(request, raw_path)
        if lowered.startswith("/.auth/"):
            return await self._easy_auth.handle(request, lowered)
        found = self._router.resolve(request.method, raw_path)
        if found is None:
            return web.Response(status=404)
        if isinstance(found, MethodNotAllowed):
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(found.allowed))})
        fn = found.target
        assert isinstance(fn.trigger, HttpTrigger)
        if not self._keys.allows(
            fn.trigger.auth_level, presented_key(request.headers, request.query)
        ):
            return web.Response(status=401)
        # Refused from the header, before a byte of the body is read, as the host does.
        declared = request.content_length
        if declared is not None and declared > self.body_limit:
            return _closing(_too_large(self.body_limit, declared))
        if request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
            await _send_continue(request)
        body = await read_body(request, self.body_limit)
        if body is None:  # a chunked body that grew past the limit
            return _closing(_too_large(self.body_limit))
        function_request = to_function_request(
            request,
            found.route_params,
            body,
            strip_principal=not self._easy_auth.trust_client,
            principal=self._easy_auth.identity(request),
        )
        result = await self._invoker.invoke(fn, function_request, reason=HOST_API_REASON)
        if not result.succeeded:
            return web.Response(status=500, text="Internal Server Error")
        try:
            return to_web_response(result.http_response)
        except TypeError:
            log.exception("Function '%s' returned an unusable HTTP response", fn.name)
            return web.Response(status=500, text="Internal Server Error")


async def read_body(request: web.BaseRequest, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past `limit` bytes (the rest unread)."""
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def _send_continue(request: web.BaseRequest) -> None:
    # The low-level server leaves `Expect: 100-continue` to the handler; without the interim
    # answer curl waits a second before it sends a body over 1 MB.
    if request.version == HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _too_large(limit: int, declared: int | None = None) -> web.Response:
    if declared is None:  # chunked: refused once past the limit, the size is unknown
        return _error(
            413, f"request body is over the limit of {limit} bytes ({BODY_LIMIT_SETTING})"
        )
    return _error(
        413, f"request body is {declared} bytes; the limit is {limit} bytes ({BODY_LIMIT_SETTING})"
    )


def _closing(response: web.Response) -> web.Response:
    # Connection: close, so that a body the client may still be sending is not waited for.
    response.force_close()
    return response


def to_function_request(
    request: web.BaseRequest,
    route_params: Mapping[str, str],
    body: bytes,
    *,
    strip_principal: bool = True,
    principal: Mapping[str, str] | None = None,
) -> func.HttpRequest:
    """The `func.HttpRequest` the worker would build (repeated values joined as the host does).

    As behind Easy Auth, the client's `X-MS-CLIENT-PRINCIPAL*` headers are dropped
    (unless `strip_principal` is false) and `principal` (the host's own) is added.
    """
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        if strip_principal and key.startswith(PRINCIPAL_PREFIX):
            continue
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if principal:
        headers.update(principal)
    params: dict[str, str] = {}
    for name, value in request.query.items():
        params[name] = f"{params[name]},{value}" if name in params else value
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=headers,
        params=params,
        route_params=dict(route_params),
        body=body,
    )


def to_web_response(value: Any) -> web.Response:
    """Turn what the function returned into the response, as the worker's converter does."""
    if value is None:
        return web.Response(status=204)  # the function set no response
    if isinstance(value, str):
        return web.Response(status=200, text=value, content_type="text/plain", charset="utf-8")
    if not isinstance(value, func.HttpResponse):
        raise TypeError(f"an HTTP function must return func.HttpResponse or str, not {value!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for name, header_value in value.headers.items():
        if name.lower() not in _HOP_HEADERS:
            headers.add(name, header_value)
    if "content-type" not in headers:
        mimetype = value.mimetype
        text_like = mimetype.startswith("text/")
        headers["Content-Type"] = f"{mimetype}; charset={value.charset}" if text_like else mimetype
    return web.Response(status=value.status_code, body=value.get_body(), headers=headers)


async def start_server(
    handler: web.Server, host: str, port: int, reuse_port: bool = False
) -> tuple[web.ServerRunner, int]:
    """Listen on host:port (0 = any free port); returns the runner and the bound port.

    With ``reuse_port`` several processes listen on the same port (SO_REUSEPORT) and
    the kernel spreads the connections among them.
    """
    # By cleanup the host has drained or cancelled every request itself (devhost/shutdown.py).
    runner = web.ServerRunner(handler, shutdown_timeout=CLOSE_TIMEOUT / 2)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


async def stop_listening(runner: web.ServerRunner) -> None:
    """Refuse new connections and close idle keep-alive ones, at once; a connection with a
    request in progress closes after its response."""
    for site in list(runner.sites):
        await site.stop()  # closes the listening socket; waits for nothing
    if runner.server is not None:
        runner.server.pre_shutdown()


def make_server(frontend: HttpFrontend) -> web.Server:
    loop = asyncio.get_running_loop()

    def make_request(
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=frontend.body_limit
        )

    # No access log: the invoker already logs every execution, and logging twice costs time.
    return web.Server(frontend.handle, request_factory=make_request, access_log=None)
