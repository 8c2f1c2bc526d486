"""App Service Authentication ("Easy Auth") as the local host plays it.

As in Azure, the function never sees an `X-MS-CLIENT-PRINCIPAL*` header the
client sent: the host removes them, then sets its own for a signed-in caller.
Signing in is local: `/.auth/login/dev` is a form for a user id, a name and
roles, remembered in an HMAC-signed `AppServiceAuthSession` cookie whose key is
random per host start (so a cookie cannot be edited, and a restart signs
everyone out). `LOCAL_TRUST_CLIENT_PRINCIPAL=1` (tests only) lets the client's
own principal headers through instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from aiohttp import hdrs, web
from multidict import MultiDictProxy

from devhost.settings import ConfigError

PRINCIPAL_PREFIX = "x-ms-client-principal"
TRUST_SETTING = "LOCAL_TRUST_CLIENT_PRINCIPAL"
USER_ID_CLAIM_SETTING = "AUTH_USER_ID_CLAIM"
# Set by the worker supervisor (devhost/workers.py) so that every process accepts the same
# sign-in cookie; hex. Not an app setting.
SESSION_SECRET_SETTING = "DEVHOST_SESSION_SECRET"  # noqa: S105 - a setting's name
DEFAULT_USER_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
COOKIE = "AppServiceAuthSession"
PROVIDER = "dev"
NAME_CLAIM, ROLES_CLAIM = "name", "roles"
ROLES = ("Student", "Teacher", "Admin", "Service")
LOGIN_PATH = "/.auth/login/dev"
LOGOUT_PATH = "/.auth/logout"
ME_PATH = "/.auth/me"
MAX_NAME = 200

_ANONYMOUS: Mapping[str, str] = MappingProxyType({})
_NO_STORE = {"Cache-Control": "no-store"}
# The page needs nothing from elsewhere: no scripts at all, inline styles, forms to itself.
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class Principal:
    """Who signed in on the local sign-in page."""

    user_id: str
    name: str
    roles: tuple[str, ...]

    def claims(self, user_id_claim: str) -> list[dict[str, str]]:
        """The claims Easy Auth would list: the id, the name, one `roles` claim per role."""
        claims = [{"typ": user_id_claim, "val": self.user_id}]
        claims.append({"typ": NAME_CLAIM, "val": self.name})
        claims.extend({"typ": ROLES_CLAIM, "val": role} for role in self.roles)
        return claims


@dataclass(frozen=True)
class EasyAuthSettings:
    """The app settings this reads: the user id's claim type and the trust switch."""

    user_id_claim: str = DEFAULT_USER_ID_CLAIM
    trust_client: bool = False
    # The sign-in cookie's key: random per host, or the one every worker process shares.
    secret: bytes | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EasyAuthSettings:
        trust = environ.get(TRUST_SETTING, "").strip()
        if trust not in ("", "0", "1"):
            raise ConfigError(f"{TRUST_SETTING} must be 0 or 1, not {trust!r}")
        claim = environ.get(USER_ID_CLAIM_SETTING) or DEFAULT_USER_ID_CLAIM
        shared = environ.get(SESSION_SECRET_SETTING)
        secret = bytes.fromhex(shared) if shared else None
        return cls(user_id_claim=claim, trust_client=trust == "1", secret=secret)


class EasyAuth:
    """The `/.auth/*` endpoints, and the principal headers a function sees."""

    def __init__(self, settings: EasyAuthSettings) -> None:
        self.user_id_claim = settings.user_id_claim
        self.trust_client = settings.trust_client
        self._secret = settings.secret or secrets.token_bytes(32)
        # A signed-in browser sends the same cookie every time: verify and encode it once.
        self._cached_identity = lru_cache(maxsize=256)(self._identity)

    # -- what the function sees --------------------------------------------------

    def identity(self, request: web.BaseRequest) -> Mapping[str, str]:
        """The `x-ms-client-principal*` headers for a signed-in caller (empty when anonymous)."""
        cookie_header = request.headers.get(hdrs.COOKIE)
        if cookie_header is None or COOKIE not in cookie_header:
            return _ANONYMOUS  # the common case costs one header look-up
        if self.trust_client and any(
            name.lower().startswith(PRINCIPAL_PREFIX) for name in request.headers
        ):
            return _ANONYMOUS  # the client's own principal wins over the cookie
        value = request.cookies.get(COOKIE)
        return self._cached_identity(value) if value else _ANONYMOUS

    def _identity(self, cookie: str) -> Mapping[str, str]:
        principal = self._verify(cookie)
        if principal is None:
            return _ANONYMOUS  # tampered, or signed by an earlier host: anonymous
        document = {
            "auth_typ": PROVIDER,
            "claims": principal.claims(self.user_id_claim),
            "name_typ": NAME_CLAIM,
            "role_typ": ROLES_CLAIM,
        }
        encoded = base64.b64encode(json.dumps(document, separators=(",", ":")).encode())
        return {
            PRINCIPAL_PREFIX: encoded.decode("ascii"),
            f"{PRINCIPAL_PREFIX}-id": principal.user_id,
            f"{PRINCIPAL_PREFIX}-name": principal.name,
            f"{PRINCIPAL_PREFIX}-idp": PROVIDER,
        }

    # -- the cookie --------------------------------------------------------------

    def sign(self, principal: Principal) -> str:
        """The cookie value: the principal as base64url JSON, a dot, its HMAC-SHA256."""
        document = {"id": principal.user_id, "name": principal.name, "roles": principal.roles}
        payload = _b64url(json.dumps(document, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def _verify(self, cookie: str) -> Principal | None:
        payload, dot, mac = cookie.partition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            document = json.loads(_unb64url(payload))
        except ValueError:
            return None
        return _principal(document)

    def _mac(self, payload: str) -> str:
        return _b64url(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def _signed_in(self, request: web.BaseRequest) -> Principal | None:
        cookie = request.cookies.get(COOKIE)
        return self._verify(cookie) if cookie else None

    # -- /.auth/* ----------------------------------------------------------------

    async def handle(self, request: web.BaseRequest, path: str) -> web.Response:
        """Answer a request under `/.auth/` (`path` lower-cased, without the query)."""
        path = path.rstrip("/")
        method = request.method
        if path == LOGIN_PATH:
            if method == hdrs.METH_GET:
                return self._login_page(request)
            if method == hdrs.METH_POST:
                return await self._login(request)
            return web.Response(status=405, headers={"Allow": "GET, POST"})
        if path in (LOGOUT_PATH, ME_PATH) and method != hdrs.METH_GET:
            return web.Response(status=405, headers={"Allow": "GET"})
        if path == LOGOUT_PATH:
            target = safe_redirect(request.query.get("post_logout_redirect_uri")) or LOGIN_PATH
            response = web.Response(status=302, headers={"Location": target, **_NO_STORE})
            response.del_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
            return response
        if path == ME_PATH:
            return self._me(request)
        return web.Response(
            status=404, text=f"Only the '{PROVIDER}' sign-in is available locally: {LOGIN_PATH}"
        )

    def _me(self, request: web.BaseRequest) -> web.Response:
        principal = self._signed_in(request)
        if principal is None:
            return web.Response(status=401, headers=_NO_STORE)
        identity = {
            "provider_name": PROVIDER,
            "user_id": principal.user_id,
            "user_claims": principal.claims(self.user_id_claim),
        }
        return web.json_response([identity], headers=_NO_STORE)

    def _login_page(self, request: web.BaseRequest) -> web.Response:
        query = request.query
        # "New random id" submits the form here by GET, so what was typed is kept.
        user_id = query.get("user_id", "") if "new_id" not in query else ""
        form = LoginForm(
            user_id=user_id or str(uuid.uuid4()),
            name=query.get("name", ""),
            roles=tuple(query.getall("roles", [])),
            redirect=query.get("post_login_redirect_uri", ""),
        )
        return _page(form, signed_in=self._signed_in(request))

    async def _login(self, request: web.BaseRequest) -> web.Response:
        posted = await request.post()  # empty unless the body is a form
        form = LoginForm(
            user_id=_text(posted, "user_id").strip(),
            name=_text(posted, "name").strip(),
            roles=tuple(v for v in posted.getall("roles", []) if isinstance(v, str)),
            redirect=_text(posted, "post_login_redirect_uri")
            or request.query.get("post_login_redirect_uri", ""),
        )
        problem = form.problem()
        if problem is not None:
            field, message = problem
            return _page(form, status=400, error=(field, message), signed_in=None)
        principal = Principal(
            user_id=str(uuid.UUID(form.user_id)),
            name=form.name,
            roles=tuple(role for role in ROLES if role in form.roles),
        )
        target = safe_redirect(form.redirect) or "/"
        response = web.Response(status=303, headers={"Location": target, **_NO_STORE})
        # No `Secure`: the host serves plain HTTP, and a Secure cookie would never come back.
        response.set_cookie(COOKIE, self.sign(principal), path="/", httponly=True, samesite="Lax")
        return response


@dataclass(frozen=True)
class LoginForm:
    """What was entered on the sign-in page (or sent to it)."""

    user_id: str
    name: str
    roles: tuple[str, ...]
    redirect: str

    def problem(self) -> tuple[str, str] | None:
        """The first field that is wrong and why, or None."""
        try:
            uuid.UUID(self.user_id)
        except ValueError:
            return "user_id", f"User id: {self.user_id[:100]!r} is not a UUID."
        if not self.name:
            return "name", "Display name: enter a name."
        if len(self.name) > MAX_NAME or not self.name.isprintable():
            return "name", f"Display name: at most {MAX_NAME} printable characters."
        unknown = [role for role in self.roles if role not in ROLES]
        if unknown:
            return "roles", f"Roles: {unknown[0]!r} is not one of {', '.join(ROLES)}."
        if not self.roles:
            return "roles", f"Roles: choose at least one of {', '.join(ROLES)}."
        return None


def safe_redirect(target: str | None) -> str | None:
    """`target` if it is a path on this host; None for anything a browser could leave by."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    # Browsers read `\` as `/` and drop tabs and newlines: `/\evil.example` and
    # `/\t/evil.example` leave the site too. Anything but printable ASCII is refused.
    if any(c == "\\" or not "!" <= c <= "~" for c in target):
        return None
    return target


def _principal(document: Any) -> Principal | None:
    if not isinstance(document, dict):
        return None
    user_id, name, roles = document.get("id"), document.get("name"), document.get("roles")
    if not (isinstance(user_id, str) and isinstance(name, str) and isinstance(roles, list)):
        return None
    return Principal(user_id, name, tuple(r for r in roles if isinstance(r, str)))


def _text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _b64url(raw: bytes) -> str:
    # Without padding: `=` is not a legal cookie character.
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- the page ---------------------------------------------------------------------

_STYLE = """
body{font:1rem/1.5 system-ui,sans-serif;margin:0;padding:1rem;color:#1b1b1b;background:#fff}
main{max-width:32rem;margin:0 auto}
h1{font-size:1.5rem;margin:0 0 1rem}
.field{margin:0 0 1rem}
label{display:block;font-weight:600}
input[type=text]{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;
 border:1px solid #595959;border-radius:4px}
.hint{margin:.25rem 0 0;color:#444;font-size:.9rem}
fieldset{margin:0 0 1rem;padding:.5rem 1rem;border:1px solid #595959;border-radius:4px}
legend{font-weight:600;padding:0 .25rem}
.role{display:flex;align-items:center;gap:.5rem;min-height:2.75rem}
.role input{width:1.25rem;height:1.25rem;margin:0}
.role label{font-weight:400}
.actions{display:flex;flex-wrap:wrap;gap:.5rem}
button{min-height:2.75rem;padding:.5rem 1.25rem;font:inherit;border-radius:4px;
 border:2px solid #0b5cad;background:#0b5cad;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b5cad}
.error{padding:.5rem .75rem;border-left:4px solid #a4000f;color:#a4000f;background:#fff5f5}
.status{padding:.5rem .75rem;border-left:4px solid #0b5cad;background:#f2f7fc}
"""


def _page(
    form: LoginForm,
    *,
    signed_in: Principal | None,
    status: int = 200,
    error: tuple[str, str] | None = None,
) -> web.Response:
    e = html.escape
    bad = error[0] if error else None
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{'Error: ' if error else ''}Sign in (local)</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        "<h1>Sign in to the local host</h1>",
    ]
    if signed_in is not None:
        parts.append(
            f'<p class="status">Signed in as <strong>{e(signed_in.name)}</strong> '
            f"({e(', '.join(signed_in.roles))}), id <code>{e(signed_in.user_id)}</code>. "
            f'<a href="{LOGOUT_PATH}">Sign out</a></p>'
        )
    if error is not None:
        parts.append(f'<p class="error" id="error" role="alert">{e(error[1])}</p>')
    parts.append(f'<form method="post" action="{LOGIN_PATH}">')
    parts.append(
        _text_field(
            "user_id",
            "User id",
            form.user_id,
            hint="A UUID: the user's object id in Entra ID.",
            invalid=bad == "user_id",
            extra='required spellcheck="false" autocapitalize="off" autocomplete="off"',
        )
    )
    parts.append(
        _text_field(
            "name",
            "Display name",
            form.name,
            hint=None,
            invalid=bad == "name",
            extra=f'maxlength="{MAX_NAME}" required autocomplete="name"',
        )
    )
    described = ' aria-describedby="error"' if bad == "roles" else ""
    parts.append(f"<fieldset{described}><legend>Roles</legend>")
    for index, role in enumerate(ROLES):
        checked = " checked" if role in form.roles else ""
        focus = " autofocus" if bad == "roles" and index == 0 else ""
        parts.append(
            f'<div class="role"><input type="checkbox" id="role-{role.lower()}" name="roles" '
            f'value="{role}"{checked}{focus}><label for="role-{role.lower()}">{role}</label></div>'
        )
    parts.append("</fieldset>")
    parts.append(
        f'<input type="hidden" name="post_login_redirect_uri" value="{e(form.redirect)}">'
        # Sign in comes first: Enter in a text field presses the form's first button.
        '<div class="actions"><button type="submit">Sign in</button>'
        f'<button type="submit" class="secondary" formmethod="get" formaction="{LOGIN_PATH}" '
        'formnovalidate name="new_id" value="1">New random id</button></div>'
        "</form></main></body></html>"
    )
    return web.Response(
        status=status,
        text="".join(parts),
        content_type="text/html",
        charset="utf-8",
        headers=_PAGE_HEADERS,
    )


def _text_field(
    name: str, label: str, value: str, *, hint: str | None, invalid: bool, extra: str
) -> str:
    described = [
        *(["error"] if invalid else []),
        *([f"{name}-hint"] if hint else []),
    ]
    attributes = f' aria-describedby="{" ".join(described)}"' if described else ""
    if invalid:
        attributes += ' aria-invalid="true" autofocus'
    hint_html = f'<p class="hint" id="{name}-hint">{html.escape(hint)}</p>' if hint else ""
    return (
        f'<div class="field"><label for="{name}">{label}</label>'
        f'<input type="text" id="{name}" name="{name}" value="{html.escape(value)}" '
        f"{extra}{attributes}>{hint_html}</div>"
    )
