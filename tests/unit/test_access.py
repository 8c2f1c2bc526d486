"""The access rules of SPEC 10 as pure logic: principals, callers, rules, events."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field

import pytest

from shared import limits
from shared.errors import AccessDenied, InvalidPrincipal, Unauthenticated
from shared.models.access import AuthMode, Caller, Principal, Role
from shared.models.events import ActivityEvent, event_adapter
from shared.services import access
from shared.services.access import authorize, event_refusal
from shared.services.access_facts import PositiveCache
from shared.services.principals import identify, parse_principal
from tests import factories as f

CLAIM = f.OBJECT_ID
ME = uuid.UUID("11111111-1111-4111-8111-111111111111")
OTHER = uuid.UUID("22222222-2222-4222-8222-222222222222")
THING = uuid.UUID("33333333-3333-4333-8333-333333333333")


def encoded(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


# --- principals -------------------------------------------------------------------------------


def test_an_easy_auth_principal_gives_id_name_and_roles() -> None:
    principal = parse_principal(f.principal(str(ME), "Teacher", "Student", name="Ms Rivera"), CLAIM)
    assert principal.user_id == ME
    assert principal.name == "Ms Rivera"
    assert principal.roles == {Role.TEACHER, Role.STUDENT}
    assert principal.auth_typ == "aad"


def test_unknown_roles_beside_a_known_one_are_ignored() -> None:
    principal = parse_principal(f.principal(str(ME), "Student", "Librarian"), CLAIM)
    assert principal.roles == {Role.STUDENT}


def test_the_user_id_claim_is_configurable() -> None:
    document = {"claims": [{"typ": "sub", "val": str(ME)}, {"typ": "roles", "val": "Admin"}]}
    assert parse_principal(encoded(document), "sub").user_id == ME
    with pytest.raises(InvalidPrincipal, match="no 'sub' claim"):
        parse_principal(f.principal(str(ME), "Admin"), "sub")


def test_url_safe_base64_without_padding_is_read_too() -> None:
    raw = base64.urlsafe_b64encode(base64.b64decode(f.principal(str(ME), "Admin"))).decode()
    assert parse_principal(raw.rstrip("="), CLAIM).roles == {Role.ADMIN}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("%%%not base64", "not base64-encoded JSON"),
        (base64.b64encode(b"\xff\xfe").decode(), "not base64-encoded JSON"),
        (encoded([1, 2]), '"claims" list'),
        (encoded({"claims": "x"}), '"claims" list'),
        (encoded({"claims": [{"typ": 1, "val": "x"}]}), 'string "typ", "val"'),
        (encoded({"claims": [], "role_typ": 5}), '"role_typ"'),
        (encoded({"claims": [{"typ": "roles", "val": "Admin"}]}), "no 'http"),
        (
            encoded({"claims": [{"typ": CLAIM, "val": "42"}, {"typ": "roles", "val": "Admin"}]}),
            "not a UUID",
        ),
        (f.principal(str(ME)), "no known role"),
        (f.principal(str(ME), "Librarian"), "it has: Librarian"),
        ("A" * (limits.MAX_PRINCIPAL_HEADER_CHARS + 1), "over"),
    ],
)
def test_an_unusable_principal_is_refused_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(InvalidPrincipal, match=message):
        parse_principal(raw, CLAIM)


# --- callers ----------------------------------------------------------------------------------


def test_in_keys_mode_a_key_without_principal_is_a_service_or_on_admin_routes_an_admin() -> None:
    service = identify(None, "k1", mode=AuthMode.KEYS, level="function", user_id_claim=CLAIM)
    assert service.roles == {Role.SERVICE}
    assert service.principal is None
    assert service.accessor.startswith("key:")
    assert "k1" not in service.accessor
    admin = identify(None, "k2", mode=AuthMode.KEYS, level="admin", user_id_claim=CLAIM)
    assert admin.roles == {Role.ADMIN}
    assert admin.accessor.startswith("admin-key:")
    local = identify(None, None, mode=AuthMode.KEYS, level="function", user_id_claim=CLAIM)
    assert local.accessor == "local"


def test_a_principal_narrows_the_key_and_names_the_person() -> None:
    header = f.principal(str(ME), "Student", name="sam@school.example")
    caller = identify(header, "master", mode=AuthMode.KEYS, level="admin", user_id_claim=CLAIM)
    assert caller.roles == {Role.STUDENT}
    assert caller.user_id == ME
    assert caller.accessor == f"principal:sam@school.example ({ME}) [Student]"


def test_in_principal_mode_a_key_is_not_enough() -> None:
    with pytest.raises(Unauthenticated, match="sign in"):
        identify(None, "master", mode=AuthMode.PRINCIPAL, level="admin", user_id_claim=CLAIM)


# --- rules ------------------------------------------------------------------------------------


@dataclass
class Facts:
    """Facts for the rules, and which were asked."""

    interest: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    created: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    joined: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    attempted: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool:
        self.asked.append("interest")
        return (teacher_id, student_id) in self.interest

    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool:
        self.asked.append("created")
        return (teacher_id, content_id) in self.created

    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        self.asked.append("joined")
        return (teacher_id, session_id) in self.joined

    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool:
        self.asked.append("attempted")
        return (student_id, quiz_id) in self.attempted


def person(*roles: Role, user: uuid.UUID = ME) -> Caller:
    return Caller(Principal(user, "x", frozenset(roles)), frozenset(roles), f"principal:{user}")


SERVICE = Caller(None, frozenset({Role.SERVICE}), "function-key:x")
ADMIN = Caller(None, frozenset({Role.ADMIN}), "admin-key:x")


@pytest.mark.parametrize("rule", access.RULES, ids=lambda rule: rule.name)
def test_admin_passes_every_rule_and_service_every_function_level_route(rule: access.Rule) -> None:
    facts = Facts()
    assert authorize(rule, ADMIN, THING, facts, level="admin") is Role.ADMIN
    assert authorize(rule, SERVICE, THING, facts, level="function") is Role.SERVICE
    with pytest.raises(AccessDenied):
        authorize(rule, SERVICE, THING, facts, level="admin")
    assert facts.asked == []  # no lookup when the role alone decides


def test_student_record_self_or_a_teacher_with_interest() -> None:
    facts = Facts(interest={(ME, OTHER)})
    rule = access.STUDENT_RECORD
    assert authorize(rule, person(Role.STUDENT), ME, facts, level="function") is Role.STUDENT
    with pytest.raises(AccessDenied, match="refused by rule student-record"):
        authorize(rule, person(Role.STUDENT), OTHER, facts, level="function")
    assert authorize(rule, person(Role.TEACHER), OTHER, facts, level="function") is Role.TEACHER
    with pytest.raises(AccessDenied):
        authorize(rule, person(Role.TEACHER), THING, facts, level="function")


def test_own_record_is_self_only_even_for_a_teacher_with_interest() -> None:
    facts = Facts(interest={(ME, OTHER)})
    for role in (Role.STUDENT, Role.TEACHER):
        assert authorize(access.OWN_RECORD, person(role), ME, facts, level="admin") is role
        with pytest.raises(AccessDenied, match="own-record"):
            authorize(access.OWN_RECORD, person(role), OTHER, facts, level="admin")
    assert facts.asked == []


def test_leaderboard_student_who_attempted_or_teacher_who_created_and_teacher_wins() -> None:
    facts = Facts(attempted={(ME, THING)}, created={(ME, THING)})
    rule = access.QUIZ_LEADERBOARD
    assert authorize(rule, person(Role.STUDENT), THING, facts, level="function") is Role.STUDENT
    both = person(Role.STUDENT, Role.TEACHER)
    # A teacher who created the quiz sees every id, even when also a student.
    assert authorize(rule, both, THING, facts, level="function") is Role.TEACHER
    with pytest.raises(AccessDenied):
        authorize(rule, person(Role.STUDENT, user=OTHER), THING, facts, level="function")


def test_content_reports_live_sessions_aggregates_and_erasure() -> None:
    facts = Facts(created={(ME, THING)}, joined={(ME, OTHER)})
    teacher, student = person(Role.TEACHER), person(Role.STUDENT)
    assert authorize(access.CONTENT_REPORT, teacher, THING, facts, level="function")
    assert authorize(access.LIVE_SESSION, teacher, OTHER, facts, level="function")
    assert authorize(access.AGGREGATES, teacher, None, facts, level="function")
    assert authorize(access.TEACHER_REPORT, teacher, ME, facts, level="function")
    target: uuid.UUID | None
    for rule, target in (
        (access.CONTENT_REPORT, OTHER),
        (access.LIVE_SESSION, THING),
        (access.TEACHER_REPORT, OTHER),
        (access.ADMIN_ONLY, ME),
    ):
        with pytest.raises(AccessDenied, match=rule.name):
            authorize(rule, teacher, target, facts, level="function")
    for rule, target in (
        (access.CONTENT_REPORT, THING),
        (access.LIVE_SESSION, OTHER),
        (access.AGGREGATES, None),
        (access.TEACHER_REPORT, ME),
        (access.ADMIN_ONLY, ME),
    ):
        with pytest.raises(AccessDenied):
            authorize(rule, student, target, facts, level="function")


def test_a_service_principal_is_a_service_caller() -> None:
    service = person(Role.SERVICE)
    assert authorize(access.STUDENT_RECORD, service, OTHER, Facts(), level="function")
    with pytest.raises(AccessDenied):
        authorize(access.OWN_RECORD, service, OTHER, Facts(), level="admin")


# --- events a person may send ---------------------------------------------------------------


def event(raw: dict[str, object]) -> ActivityEvent:
    return event_adapter.validate_python(raw)


def test_a_student_sends_only_their_own_student_and_forum_events() -> None:
    student = person(Role.STUDENT)
    assert event_refusal(student, event(f.lesson_progress(student_id=str(ME)))) is None
    assert event_refusal(student, event(f.forum_activity(user_id=str(ME)))) is None
    other = event_refusal(student, event(f.quiz_attempt(student_id=str(OTHER))))
    assert other is not None
    assert other.field == "student_id"
    assert "own-events" in other.message
    assert str(ME) in other.message
    teacher_kind = event_refusal(student, event(f.content_activity(teacher_id=str(ME))))
    assert teacher_kind is not None
    assert teacher_kind.field == "teacher_id"
    assert "may not send content_activity" in teacher_kind.message


def test_a_teacher_sends_only_their_own_teacher_and_forum_events() -> None:
    teacher = person(Role.TEACHER)
    assert event_refusal(teacher, event(f.feedback(teacher_id=str(ME)))) is None
    assert event_refusal(teacher, event(f.forum_activity(user_id=str(ME)))) is None
    refused = event_refusal(teacher, event(f.lesson_progress(student_id=str(ME))))
    assert refused is not None
    assert refused.field == "student_id"
    assert event_refusal(teacher, event(f.feedback(teacher_id=str(OTHER)))) is not None


def test_programs_and_administrators_send_anyones_events() -> None:
    raw = event(f.feedback(teacher_id=str(OTHER)))
    for caller in (SERVICE, ADMIN, person(Role.ADMIN), person(Role.SERVICE)):
        assert event_refusal(caller, raw) is None


# --- the cache of positive facts ------------------------------------------------------------


def test_the_cache_keeps_yes_and_asks_again_after_no() -> None:
    cache = PositiveCache(seconds=60, size=10)
    answers = iter([False, True])
    calls: list[bool] = []

    def ask() -> bool:
        calls.append(True)
        return next(answers)

    key = ("interest", ME, OTHER)
    assert cache.ask(key, ask) is False
    assert cache.ask(key, ask) is True
    assert cache.ask(key, ask) is True  # from the cache
    assert len(calls) == 2
