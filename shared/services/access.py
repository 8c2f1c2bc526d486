"""Who may do what (SPEC 10): principals, the access rules, and the facts they ask.

Every HTTP route declares one ``Rule`` (``shared.services.openapi.Operation``);
the function layer identifies the caller, calls ``authorize`` before any data
is read, and records the outcome in the access log. The rules are the table
of docs/access.md, written once here:

- Admin: everything. Service (a key without a principal, or the Service
  role): everything a function-level route allows, never an admin-level one.
- Student S and Teacher T: what each rule's ``student`` / ``teacher`` check
  allows; a principal with several roles gets the union.

A teacher's "legitimate educational interest" in a student is derived from
the data (``AccessFacts``): the student has activity on content the teacher
created, or received feedback from the teacher.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from redis.exceptions import RedisError

from shared import limits
from shared.models.access import AuthMode, Caller, Principal, Role
from shared.models.api import FieldError
from shared.models.events import ActivityEvent
from shared.repositories.access import get_access
from shared.repositories.realtime import get_realtime

log = logging.getLogger(__name__)

# The role claim type Entra ID puts in the principal, whatever role_typ says
# (Easy Auth sets role_typ to the long WS-Federation URI, the claims say "roles").
ROLES_CLAIM = "roles"
NAME_CLAIM = "name"


# --- errors (the function layer maps them to 401 / 403) -------------------------------------


class Unauthenticated(Exception):
    """No principal where one is required (401)."""


class InvalidPrincipal(Exception):
    """``X-MS-CLIENT-PRINCIPAL`` is unusable: malformed, no usable id, no known role (403)."""


class AccessDenied(Exception):
    """A rule refused the caller (403); the message names the rule."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


# --- principals -------------------------------------------------------------------------------


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


# --- the facts the rules ask --------------------------------------------------------------------


class AccessFacts(Protocol):
    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool: ...
    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool: ...
    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool: ...
    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool: ...


class FactStore(Protocol):
    """What PostgreSQL answers (implemented by ``AccessRepository``)."""

    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool: ...
    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool: ...
    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool: ...
    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool: ...


class FactMirror(Protocol):
    """What Redis can answer first (None: it does not hold that view)."""

    def has_attempted(self, quiz_id: str, student_id: str) -> bool | None: ...
    def has_joined(self, session_id: str, teacher_id: str) -> bool | None: ...


class PositiveCache:
    """Facts found true, kept for a while: interest only grows with new events,
    so a "yes" stays true; a "no" is asked again, so new interest shows at once."""

    def __init__(self, seconds: float, size: int) -> None:
        self._seconds, self._size = seconds, size
        self._until: dict[tuple[str, uuid.UUID, uuid.UUID], float] = {}
        self._lock = threading.Lock()

    def ask(self, key: tuple[str, uuid.UUID, uuid.UUID], answer: Callable[[], bool]) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._until.get(key, 0.0) > now:
                return True
        found = answer()
        if found:
            with self._lock:
                if len(self._until) >= self._size:
                    self._until.clear()  # rare; a bounded cache beats an unbounded one
                self._until[key] = now + self._seconds
        return found


class StoreFacts:
    """The facts, from PostgreSQL (indexed lookups) and Redis where it holds the view.

    The stores are reached through factories, so a caller that passes without
    a fact (an administrator, a program) never opens a connection for one.
    """

    def __init__(
        self,
        store: Callable[[], FactStore],
        mirror: Callable[[], FactMirror],
        cache: PositiveCache,
    ) -> None:
        self._store, self._mirror, self._cache = store, mirror, cache

    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("interest", teacher_id, student_id),
            lambda: self._store().teacher_has_interest(teacher_id, student_id),
        )

    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("created", teacher_id, content_id),
            lambda: self._store().teacher_created(teacher_id, content_id),
        )

    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("joined", teacher_id, session_id),
            lambda: self._mirrored(
                lambda: self._mirror().has_joined(str(session_id), str(teacher_id)),
                lambda: self._store().teacher_joined(teacher_id, session_id),
            ),
        )

    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("attempted", student_id, quiz_id),
            lambda: self._mirrored(
                lambda: self._mirror().has_attempted(str(quiz_id), str(student_id)),
                lambda: self._store().student_attempted(student_id, quiz_id),
            ),
        )

    @staticmethod
    def _mirrored(mirror: Callable[[], bool | None], store: Callable[[], bool]) -> bool:
        # Redis answers while PostgreSQL is down, as the real-time views do; a
        # "no" from Redis is asked again of PostgreSQL (Redis may lag behind).
        try:
            found = mirror()
        except RedisError as exc:
            log.warning("access fact from PostgreSQL, Redis is down: %s", exc)
            found = None
        return True if found else store()


_FACT_CACHE = PositiveCache(limits.ACCESS_FACT_CACHE_SECONDS, limits.ACCESS_FACT_CACHE_SIZE)


def get_access_facts() -> StoreFacts:
    """The facts from the process-wide stores, sharing one cache of positive answers."""
    return StoreFacts(get_access, get_realtime, _FACT_CACHE)


# --- the rules --------------------------------------------------------------------------------

Target = Literal["person", "content", "session"] | None
Check = Callable[[uuid.UUID, uuid.UUID | None, AccessFacts], bool]


def _anyone(person: uuid.UUID, target: uuid.UUID | None, facts: AccessFacts) -> bool:
    return True


def _self(person: uuid.UUID, target: uuid.UUID | None, facts: AccessFacts) -> bool:
    return person == target


def _interest(teacher: uuid.UUID, student: uuid.UUID | None, facts: AccessFacts) -> bool:
    return student is not None and (
        teacher == student or facts.teacher_has_interest(teacher, student)
    )


def _created(teacher: uuid.UUID, content: uuid.UUID | None, facts: AccessFacts) -> bool:
    return content is not None and facts.teacher_created(teacher, content)


def _joined(teacher: uuid.UUID, session: uuid.UUID | None, facts: AccessFacts) -> bool:
    return session is not None and facts.teacher_joined(teacher, session)


def _attempted(student: uuid.UUID, quiz: uuid.UUID | None, facts: AccessFacts) -> bool:
    return quiz is not None and facts.student_attempted(student, quiz)


@dataclass(frozen=True)
class Rule:
    """One line of the access table: who besides Admin and Service may pass."""

    name: str
    text: str  # what the rule allows, in words (403 messages, OpenAPI, docs)
    target: Target = None  # what the route's path parameter names
    student: Check | None = None
    teacher: Check | None = None
    public: bool = False  # no caller needed at all


PUBLIC = Rule("public", "anyone, signed in or not", public=True)
OWN_EVENTS = Rule(
    "own-events",
    "a student or teacher may send only events whose acting user is themselves "
    "(student_id or teacher_id, user_id for forum activity)",
    student=_anyone,
    teacher=_anyone,
)
STUDENT_RECORD = Rule(
    "student-record",
    "a student may read their own record; a teacher, the record of a student who has "
    "activity on content the teacher created or who received the teacher's feedback",
    target="person",
    student=_self,
    teacher=_interest,
)
OWN_RECORD = Rule(
    "own-record",
    "a student or teacher may read only their own",
    target="person",
    student=_self,
    teacher=_self,
)
QUIZ_LEADERBOARD = Rule(
    "quiz-leaderboard",
    "a student may see the leaderboard of a quiz they attempted (other students' ids "
    "hidden); a teacher, of a quiz they created",
    target="content",
    student=_attempted,
    teacher=_created,
)
CONTENT_REPORT = Rule(
    "content-report",
    "a teacher may read the reports of lessons and quizzes they created",
    target="content",
    teacher=_created,
)
TEACHER_REPORT = Rule(
    "own-teacher-report",
    "a teacher may read only their own teacher report",
    target="person",
    teacher=_self,
)
LIVE_SESSION = Rule(
    "live-session",
    "a teacher may see the live class sessions they joined",
    target="session",
    teacher=_joined,
)
AGGREGATES = Rule(
    "aggregates",
    "teachers may read forum and activity aggregates",
    teacher=_anyone,
)
ADMIN_ONLY = Rule("admin-only", "only an administrator may erase a user", target="person")

RULES: tuple[Rule, ...] = (
    PUBLIC,
    OWN_EVENTS,
    STUDENT_RECORD,
    OWN_RECORD,
    QUIZ_LEADERBOARD,
    CONTENT_REPORT,
    TEACHER_REPORT,
    LIVE_SESSION,
    AGGREGATES,
    ADMIN_ONLY,
)


def authorize(
    rule: Rule, caller: Caller, target: uuid.UUID | None, facts: AccessFacts, *, level: str
) -> Role:
    """The role under which ``caller`` may pass ``rule``; raises ``AccessDenied``.

    ``level`` is the route's key level: a Service caller passes function-level
    routes, never admin-level ones. Cheap checks go first, so a fact is looked
    up only when it decides.
    """
    if caller.has(Role.ADMIN):
        return Role.ADMIN
    if caller.has(Role.SERVICE) and level != "admin":
        return Role.SERVICE
    person = caller.user_id
    if person is not None:
        for role, check in ((Role.TEACHER, rule.teacher), (Role.STUDENT, rule.student)):
            if check is not None and caller.has(role) and check(person, target, facts):
                return role
    raise AccessDenied(rule, f"refused by rule {rule.name}: {rule.text}")


# --- events a person may send -------------------------------------------------------------------

ACTOR_FIELDS: dict[Role, frozenset[str]] = {
    Role.STUDENT: frozenset({"student_id", "user_id"}),
    Role.TEACHER: frozenset({"teacher_id", "user_id"}),
}


def event_refusal(caller: Caller, event: ActivityEvent) -> FieldError | None:
    """Why ``caller`` may not send ``event`` (blaming its actor field), or None."""
    if caller.has(Role.ADMIN) or caller.has(Role.SERVICE) or caller.user_id is None:
        return None
    field = event.actor_field
    roles = [role for role in ACTOR_FIELDS if caller.has(role)]
    if any(field in ACTOR_FIELDS[role] for role in roles):
        if event.actor_id == caller.user_id:
            return None
        return FieldError(
            field=field,
            message=f"refused by rule {OWN_EVENTS.name}: {field} must be your own user id "
            f"({caller.user_id}); a person may send only events they did themselves",
        )
    return FieldError(
        field=field,
        message=f"refused by rule {OWN_EVENTS.name}: a {' or '.join(roles)} may not send "
        f"{event.event_type} events (their acting user is {field})",
    )
