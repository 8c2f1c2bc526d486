"""CORS as func start answers it: ASP.NET Core's CORS middleware in front of everything.

Preflights are answered by the host itself (204, before routing and keys), and
every other response to an allowed origin gets the allow headers, 404s and
401s included, so a browser client can read why its call failed.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import hdrs, web

from devhost.settings import CorsSettings

# Browsers cache a preflight this many seconds (func start sets none: 5 s in Chromium).
PREFLIGHT_MAX_AGE = "600"
# Not safelisted, so a browser client could not read them otherwise (503s and conditional GETs).
EXPOSED_HEADERS = "Retry-After, ETag"


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """An OPTIONS request asking whether a cross-origin method may be used."""
    return method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers


class Cors:
    """The configured policy; any method and any header are allowed, as in func start."""

    def __init__(self, settings: CorsSettings) -> None:
        self._origins = settings.origins
        self._any = settings.any_origin
        self._credentials = settings.credentials

    def allows(self, origin: str) -> bool:
        return self._any or origin in self._origins

    def preflight(self, origin: str, headers: Mapping[str, str]) -> web.Response:
        """The answer to a preflight; without CORS headers the browser blocks the call."""
        response = web.Response(status=204)
        if self.allows(origin):
            self._allow(origin, response)
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = headers[
                hdrs.ACCESS_CONTROL_REQUEST_METHOD
            ]
            requested = headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "").strip()
            if requested:
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = PREFLIGHT_MAX_AGE
        return response

    def decorate(self, origin: str, response: web.StreamResponse) -> None:
        """Add the headers for an actual (not preflight) cross-origin response."""
        if self.allows(origin):
            self._allow(origin, response)
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED_HEADERS

    def _allow(self, origin: str, response: web.StreamResponse) -> None:
        # Set, not added: the host's answer wins over one a function wrote, as in func start.
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*" if self._any else origin
        if self._credentials:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)
