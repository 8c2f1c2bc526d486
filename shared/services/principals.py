"""Who is calling: the principal App Service Authentication signed in, or a key.

``identify`` turns a request's ``X-MS-CLIENT-PRINCIPAL`` header or function key
into a ``Caller`` (the roles the access rules check, and how the access log
names the caller); what the caller may then do is ``shared.services.access``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from typing import Any

from shared import limits
from shared.errors import InvalidPrincipal, Unauthenticated
from shared.models.access import AuthMode, Caller, Principal, Role

# The role claim type Entra ID puts in the principal, whatever role_typ says
# (Easy Auth sets role_typ to the long WS-Federation URI, the claims say "roles").
ROLES_CLAIM = "roles"
NAME_CLAIM = "name"


def _decode(raw: str) -> Any:
    text = raw.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        # Easy Auth uses standard base64; accept the URL-safe alphabet too.
        data = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return json.loads(data)
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidPrincipal("X-MS-CLIENT-PRINCIPAL is not base64-encoded JSON") from None


def _claims(document: Any) -> list[tuple[str, str]]:
    if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
        raise InvalidPrincipal('X-MS-CLIENT-PRINCIPAL must be a JSON object with a "claims" list')
    claims = []
    for claim in document["claims"]:
        if not (
            isinstance(claim, dict)
            and isinstance(claim.get("typ"), str)
            and isinstance(claim.get("val"), str)
        ):
            raise InvalidPrincipal('every claim of X-MS-CLIENT-PRINCIPAL needs string "typ", "val"')
        claims.append((claim["typ"], claim["val"]))
    return claims


def _text_field(document: dict[str, Any], name: str, default: str) -> str:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidPrincipal(f'"{name}" of X-MS-CLIENT-PRINCIPAL must be a string')
    return value


def parse_principal(raw: str, user_id_claim: str) -> Principal:
    """The principal App Service Authentication put in ``X-MS-CLIENT-PRINCIPAL``."""
    if len(raw) > limits.MAX_PRINCIPAL_HEADER_CHARS:
        raise InvalidPrincipal(
            f"X-MS-CLIENT-PRINCIPAL is over {limits.MAX_PRINCIPAL_HEADER_CHARS} characters"
        )
    document = _decode(raw)
    claims = _claims(document)
    role_typ = _text_field(document, "role_typ", ROLES_CLAIM)
    name_typ = _text_field(document, "name_typ", NAME_CLAIM)
    auth_typ = document.get("auth_typ")
    ids = [val for typ, val in claims if typ == user_id_claim]
    if not ids:
        raise InvalidPrincipal(
            f"the principal has no '{user_id_claim}' claim (AUTH_USER_ID_CLAIM names the user id)"
        )
    try:
        user_id = uuid.UUID(ids[0])
    except ValueError:
        raise InvalidPrincipal(f"the principal's '{user_id_claim}' is not a UUID") from None
    found = {val for typ, val in claims if typ in (role_typ, ROLES_CLAIM)}
    known = {role for role in Role if role.value in found}
    if not known:
        raise InvalidPrincipal(
            "the principal has no known role (Student, Teacher, Admin or Service); "
            f"it has: {', '.join(sorted(found))[:200] or 'none'}"
        )
    names = [val for typ, val in claims if typ == name_typ]
    return Principal(
        user_id=user_id,
        name=names[0][:200] if names else None,
        roles=frozenset(known),
        auth_typ=auth_typ if isinstance(auth_typ, str) else None,
    )


def key_accessor(key: str | None, level: str) -> str:
    """A key as the access log names it: a fingerprint, never the key.

    On an admin-level route only the master key passes the host: ``admin-key:``.
    On a function-level route the host accepts a function key or the master
    key and does not tell the app which: ``key:`` (the fingerprint tells them
    apart to whoever holds the keys).
    """
    if not key:
        return "local"  # no key sent: a local host without keys configured
    label = "admin-key" if level == "admin" else "key"
    return f"{label}:{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def principal_accessor(principal: Principal) -> str:
    roles = ",".join(sorted(principal.roles))
    return f"principal:{principal.name or '-'} ({principal.user_id}) [{roles}]"[:300]


def identify(
    principal_header: str | None,
    key: str | None,
    *,
    mode: AuthMode,
    level: str,
    user_id_claim: str,
) -> Caller:
    """The caller of a route declared at key ``level`` ("function" or "admin").

    A principal always decides (in keys mode it narrows what the key allows).
    Without one: in keys mode the host has checked the key, so the caller is a
    program (the master key on an admin route is an administrator); in
    principal mode the route needs a principal.
    """
    if principal_header:
        principal = parse_principal(principal_header, user_id_claim)
        return Caller(principal, principal.roles, principal_accessor(principal))
    if mode is AuthMode.PRINCIPAL:
        raise Unauthenticated(
            "sign in first: this service runs with AUTH_MODE=principal and needs a signed-in "
            "principal (App Service Authentication); keys are not accepted"
        )
    role = Role.ADMIN if level == "admin" else Role.SERVICE
    return Caller(None, frozenset({role}), key_accessor(key, level))


def refused_principal_accessor(principal_header: str) -> str:
    """How the access log names a caller whose principal could not be read."""
    digest = hashlib.sha256(principal_header.encode(errors="replace")).hexdigest()[:12]
    return f"invalid-principal:{digest}"
