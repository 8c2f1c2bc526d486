"""Who may do what (SPEC 10): the access rules, and which events a person may send.

Every HTTP route declares one ``Rule`` (``shared.services.openapi.Operation``);
the function layer identifies the caller, calls ``authorize`` before any data
is read, and records the outcome in the access log. The rules are the table
of docs/access.md, written once here:

- Admin: everything. Service (a key without a principal, or the Service
  role): everything a function-level route allows, never an admin-level one.
- Student S and Teacher T: what each rule's ``student`` / ``teacher`` check
  allows; a principal with several roles gets the union.

Who the caller is comes from ``shared.services.principals``; the facts a
rule asks (a teacher's interest in a student, ...) from
``shared.services.access_facts``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from shared.errors import AccessDenied
from shared.models.access import Caller, Role
from shared.models.api import FieldError
from shared.models.events import ActivityEvent
from shared.services.access_facts import AccessFacts

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
    raise AccessDenied(rule.name, f"refused by rule {rule.name}: {rule.text}")


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
