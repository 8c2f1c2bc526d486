"""The dashboards (SPEC 11): the pages and their assets, served by the app itself.

Every file lives in the repo (``dashboard/``, and the browser tracker in
``clients/js/``), read (and gzipped) once per process and answered with a
strong ETag, so a page load that changed nothing costs a 304. The pages fetch their data from
the API with the caller's own credentials; these files are public, as the
app's own static content (SPEC 10).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import azure.functions as func

from functions.routing import Call
from shared.errors import NotFound
from shared.services.access import PUBLIC
from shared.services.openapi import API, Operation, Parameter

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "dashboard"
# Files served outside dashboard/: the browser tracker (SPEC 12).
EXTRA = {"assets/tracker.js": ROOT / "clients" / "js" / "tracker.js"}
# A page address (its first segment) -> its HTML file; ids follow in the path.
PAGES = {
    "": "index.html",
    "students": "students.html",
    "quizzes": "quizzes.html",
    "lessons": "lessons.html",
    "teachers": "teachers.html",
    "live": "live.html",
    "activity": "activity.html",
    "admin": "admin.html",
    "demo": "demo.html",
}
# Page addresses that name a thing by its id: students/{id}, ... (alone: a box to type one).
WITH_ID = frozenset({"students", "quizzes", "lessons", "teachers", "live"})
# Text types get "; charset=utf-8" from the host.
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".md": "text/plain",
}
COMPRESSED = frozenset({".html", ".js", ".css", ".svg", ".md"})
# Everything comes from this origin; no inline script, no framing.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Always revalidate: an unchanged file is a 304, a deployed change shows at once.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str
    gzipped: bytes | None = None  # the same bytes gzipped, when that is smaller

    def variant(self, accept_encoding: str) -> tuple[bytes, str, dict[str, str]]:
        """The body, ETag and extra headers for a client that accepts these encodings."""
        if self.gzipped is not None and "gzip" in accept_encoding.lower():
            return self.gzipped, self.etag[:-1] + '-gzip"', {"Content-Encoding": "gzip"}
        return self.body, self.etag, {}


def resolve(path: str) -> Path | None:
    """The file a dashboard address names, or None (never outside the served folders)."""
    clean = path.strip("/")
    if clean in EXTRA:
        return EXTRA[clean]
    parts = clean.split("/")
    if parts[0] in PAGES:
        if len(parts) == 1 or (len(parts) == 2 and parts[0] in WITH_ID):
            return DASHBOARD / PAGES[parts[0]]
        return None
    if parts[0] not in ("assets", "vendor"):
        return None
    candidate = (DASHBOARD / clean).resolve()
    if DASHBOARD.resolve() not in candidate.parents or candidate.suffix not in TYPES:
        return None
    return candidate


@lru_cache(maxsize=256)
def load(path: Path) -> StaticFile | None:
    """A file's bytes, type and ETag, read once per process."""
    if not path.is_file():
        return None
    body = path.read_bytes()
    content_type = TYPES.get(path.suffix)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    # Text goes gzipped to whoever accepts it (Chart.js: 210 kB -> 70 kB), compressed once.
    packed = gzip.compress(body, compresslevel=9, mtime=0) if path.suffix in COMPRESSED else None
    if packed is not None and len(packed) >= len(body) * 0.9:
        packed = None
    return StaticFile(body, content_type or "application/octet-stream", etag, packed)


@API.route(
    Operation(
        name="dashboard",
        route="dashboard/{*path}",
        method="get",
        summary="The dashboards: pages for students, teachers and administrators, and their assets",
        rule=PUBLIC,
        level="anonymous",
        parameters=(
            Parameter(
                "path",
                "path",
                {"type": "string"},
                "a page address (students/{id}, quizzes/{id}, lessons/{id}, teachers/{id}, "
                "live/{id}, activity, admin, demo) or an asset",
            ),
        ),
        responses={
            200: ("The page or asset", None),
            304: ("Not modified since the ETag sent in If-None-Match", None),
            404: ("No such page or asset", "ErrorResponse"),
        },
        tags=("dashboard",),
    )
)
def dashboard(call: Call) -> func.HttpResponse:
    path = resolve(call.req.route_params.get("path") or "")
    found = load(path) if path is not None else None
    if found is None:
        raise NotFound("no such dashboard page or asset", what="dashboard file", key=path)
    body, etag, extra = found.variant(call.req.headers.get("Accept-Encoding") or "")
    headers = HEADERS | {"ETag": etag, "Vary": "Accept-Encoding"}
    if etag in (call.req.headers.get("If-None-Match") or ""):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(
        body, status_code=200, headers=headers | extra, mimetype=found.content_type
    )
