"""Who may see what (SPEC 10), as a matrix: every route x every kind of caller x
both AUTH_MODEs, through HTTP against the real app and stores.

The expected answers restate SPEC 10's table here, independently of the app's
own rules. Where a call is allowed, the body must be the right person's data;
where it is refused, the body holds no data and the access log holds the
refused attempt, naming the caller and the rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devhost import DevHost
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import (
    FUNCTION_KEY,
    MASTER_KEY,
    ROOT,
    host_environ,
    rows,
    running_host,
)

MODES = ("keys", "principal")
PERSONS = (
    "student_self",
    "student_other",
    "teacher_interest",
    "teacher_without",
    "admin",
    "service",
)
CREDENTIALS = ("none", "function_key", "master_key", *PERSONS, "malformed")
ROLE_OF = {
    "student_self": "Student",
    "student_other": "Student",
    "teacher_interest": "Teacher",
    "teacher_without": "Teacher",
    "admin": "Admin",
    "service": "Service",
}


@dataclass(frozen=True)
class World:
    """The people and things of the matrix, with the events that relate them."""

    ids: dict[str, str]

    def __getattr__(self, name: str) -> str:
        return self.ids[name]


@pytest.fixture(scope="module")
def world(host: DevHost, client: httpx.Client) -> World:
    ids = {name: f.new_id() for name in (*PERSONS, "classmate", "lesson", "quiz", "session")}
    ids["post"] = f.new_id()
    me, teacher = ids["student_self"], ids["teacher_interest"]
    events = [
        f.content_activity(teacher_id=teacher, content_id=ids["lesson"], content_type="lesson"),
        f.content_activity(teacher_id=teacher, content_id=ids["quiz"], content_type="quiz"),
        f.lesson_progress(student_id=me, lesson_id=ids["lesson"]),
        f.quiz_attempt(student_id=me, quiz_id=ids["quiz"], score=5.0),
        f.quiz_attempt(student_id=ids["classmate"], quiz_id=ids["quiz"], score=9.0),
        f.forum_activity(user_id=me, post_id=ids["post"]),
        f.forum_activity(
            user_id=ids["classmate"],
            post_id=f.new_id(),
            action_type="reply",
            parent_post_id=ids["post"],
            content="Try (x-1)(x+1).",
            created_at=f.ago(minutes=1),
        ),
        f.feedback(teacher_id=teacher, student_id=me),
        f.live_class_engagement(teacher_id=teacher, session_id=ids["session"]),
    ]
    response = client.post("v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)
    host.wait_idle(timeout=60)
    return World(ids)


@pytest.fixture(scope="module")
def principal_host(test_run: TestRun) -> Iterator[DevHost]:
    """The same app and stores with AUTH_MODE=principal (routes anonymous at the host).

    It polls no queues: the session host persists what it accepts.
    """
    environ = host_environ(test_run, AUTH_MODE="principal")
    with running_host(ROOT, environ, queues=False, timers=False) as running:
        yield running


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {names} are filled from the world; {victim} is a fresh id per call
    level: str  # the key level in AUTH_MODE=keys
    allowed: frozenset[str]  # the persons SPEC 10 lets through
    check: Callable[[World, Any, str], None]  # the body of an allowed answer is the right one
    rule: str | None = None  # the rule a refusal names (None on public routes)
    person: str | None = None  # the path parameter naming the person it is about
    recorded: bool = True  # an allowed call about a person is in the record of disclosures
    json: bool = True  # the answer is JSON (else text, e.g. a dashboard file)

    @property
    def public(self) -> bool:
        return self.rule is None


EVERYONE = frozenset(PERSONS)
ADMINS = frozenset({"admin", "service"})  # Service: every function-level route
TEACHER_OF_S1 = ADMINS | {"student_self", "teacher_interest"}


def _progress(w: World, body: Any, who: str) -> None:
    assert body["student_id"] == w.student_self
    assert [lesson["lesson_id"] for lesson in body["lessons"]] == [w.lesson]


def _leaderboard(w: World, body: Any, who: str) -> None:
    assert body["quiz_id"] == w.quiz
    ids = [entry["student_id"] for entry in body["entries"]]
    if who == "student_self":
        # Other students' ids hidden, ranks and scores shown, own entry named.
        assert ids == [None, w.student_self]
        assert [entry["best_score"] for entry in body["entries"]] == [9.0, 5.0]
        assert body["viewer"] == {
            "rank": 2,
            "student_id": w.student_self,
            "best_score": 5.0,
            "attempts": 1,
        }
    else:
        assert ids == [w.classmate, w.student_self]
        assert "viewer" not in body


def _notifications(w: World, body: Any, who: str) -> None:
    assert body["user_id"] == w.student_self
    assert [(n["type"], n["actor_id"]) for n in body["notifications"]] == [("reply", w.classmate)]


def _live(w: World, body: Any, who: str) -> None:
    assert body["session_id"] == w.session
    assert [t["teacher_id"] for t in body["teachers"]] == [w.teacher_interest]


def _student_report(w: World, body: Any, who: str) -> None:
    assert body["student_id"] == w.student_self
    assert (body["lessons_started"], body["quiz_attempts"], body["feedback_received"]) == (1, 1, 1)


def _lesson_report(w: World, body: Any, who: str) -> None:
    assert (body["lesson_id"], body["students_started"]) == (w.lesson, 1)


def _quiz_report(w: World, body: Any, who: str) -> None:
    assert (body["quiz_id"], body["attempts"], body["students"]) == (w.quiz, 2, 2)


def _teacher_report(w: World, body: Any, who: str) -> None:
    assert body["teacher_id"] == w.teacher_interest
    assert body["content_created"] == {"lesson": 1, "quiz": 1, "assignment": 0}


def _lesson_students(w: World, body: Any, who: str) -> None:
    assert body["lesson_id"] == w.lesson
    assert [s["student_id"] for s in body["students"]] == [w.student_self]


def _overview(w: World, body: Any, who: str) -> None:
    assert body["user_id"] == w.student_self
    assert [lesson["lesson_id"] for lesson in body["lessons"]] == [w.lesson]
    assert [quiz["quiz_id"] for quiz in body["quizzes"]] == [w.quiz]


def _licence(w: World, body: Any, who: str) -> None:
    assert "MIT License" in body


def _keys(*names: str) -> Callable[[World, Any, str], None]:
    def check(w: World, body: Any, who: str) -> None:
        assert set(names) <= set(body), body

    return check


def _cohorts(w: World, body: Any, who: str) -> None:
    assert body["lesson_id"] == w.lesson
    assert sum(cohort["students"] for cohort in body["cohorts"]) == 1


def _recommendations(w: World, body: Any, who: str) -> None:
    assert body["student_id"] == w.student_self
    assert {item["id"] for item in body["items"]} >= {w.lesson}


def _erased(w: World, body: Any, who: str) -> None:
    assert body["erased"] == {"postgres": 0, "archive": 0, "realtime": 0}


def _export(w: World, body: Any, who: str) -> None:
    assert body["user_id"] == w.student_self
    assert body["postgres"]["lesson_progress.student_id"][0]["lesson_id"] == w.lesson


def _disclosures(w: World, body: Any, who: str) -> None:
    assert body["user_id"] == w.student_self
    assert body["disclosures"], "the matrix's own reads of S1 are recorded"


def _accepted(w: World, body: Any, who: str) -> None:
    assert body["accepted"] == 1
    assert body["rejected"] == []


ROUTES = {
    "send_events": Route(
        "POST",
        "v1/events",
        "function",
        EVERYONE - {"student_other", "teacher_interest", "teacher_without"},
        _accepted,
        "own-events",
    ),
    "progress": Route(
        "GET",
        "v1/students/{student_self}/progress",
        "function",
        TEACHER_OF_S1,
        _progress,
        "student-record",
        "student_self",
    ),
    "leaderboard": Route(
        "GET",
        "v1/quizzes/{quiz}/leaderboard",
        "function",
        TEACHER_OF_S1,
        _leaderboard,
        "quiz-leaderboard",
    ),
    "notifications": Route(
        "GET",
        "v1/users/{student_self}/notifications",
        "function",
        ADMINS | {"student_self"},
        _notifications,
        "own-record",
        "student_self",
    ),
    "live_session": Route(
        "GET",
        "v1/live/sessions/{session}",
        "function",
        ADMINS | {"teacher_interest"},
        _live,
        "live-session",
    ),
    "student_report": Route(
        "GET",
        "v1/reports/students/{student_self}",
        "function",
        TEACHER_OF_S1,
        _student_report,
        "student-record",
        "student_self",
    ),
    "lesson_report": Route(
        "GET",
        "v1/reports/lessons/{lesson}",
        "function",
        ADMINS | {"teacher_interest"},
        _lesson_report,
        "content-report",
    ),
    "quiz_report": Route(
        "GET",
        "v1/reports/quizzes/{quiz}",
        "function",
        ADMINS | {"teacher_interest"},
        _quiz_report,
        "content-report",
    ),
    "teacher_report": Route(
        "GET",
        "v1/reports/teachers/{teacher_interest}",
        "function",
        ADMINS | {"teacher_interest"},
        _teacher_report,
        "own-teacher-report",
        "teacher_interest",
    ),
    "forum_trending": Route(
        "GET",
        "v1/reports/forum/trending",
        "function",
        ADMINS | {"teacher_interest", "teacher_without"},
        _keys("hours", "threads"),
        "aggregates",
    ),
    "forum_contributors": Route(
        "GET",
        "v1/reports/forum/contributors",
        "function",
        ADMINS | {"teacher_interest", "teacher_without"},
        _keys("days", "contributors"),
        "aggregates",
    ),
    "activity": Route(
        "GET",
        "v1/reports/activity",
        "function",
        ADMINS | {"teacher_interest", "teacher_without"},
        _keys("buckets", "totals"),
        "aggregates",
    ),
    "cohorts": Route(
        "GET",
        "v1/reports/cohorts/lessons/{lesson}",
        "function",
        ADMINS | {"teacher_interest"},
        _cohorts,
        "content-report",
    ),
    "recommendations": Route(
        "GET",
        "v1/students/{student_self}/recommendations",
        "function",
        TEACHER_OF_S1,
        _recommendations,
        "student-record",
        "student_self",
    ),
    "erase": Route(
        "DELETE",
        "v1/users/{victim}",
        "admin",
        frozenset({"admin"}),
        _erased,
        "admin-only",
        "victim",
    ),
    "export": Route(
        "GET",
        "v1/users/{student_self}/export",
        "admin",
        frozenset({"admin", "student_self"}),
        _export,
        "own-record",
        "student_self",
    ),
    "disclosures": Route(
        "GET",
        "v1/users/{student_self}/disclosures",
        "admin",
        frozenset({"admin", "student_self"}),
        _disclosures,
        "own-record",
        "student_self",
        recorded=False,  # reading the record is not itself recorded
    ),
    "lesson_progress": Route(
        "GET",
        "v1/lessons/{lesson}/progress",
        "function",
        ADMINS | {"teacher_interest"},
        _lesson_students,
        "content-report",
    ),
    "overview": Route(
        "GET",
        "v1/users/{student_self}/overview",
        "function",
        ADMINS | {"student_self"},
        _overview,
        "own-record",
        "student_self",
    ),
    "dashboard": Route(
        "GET",
        "dashboard/vendor/chart.js.LICENSE.md",
        "anonymous",
        EVERYONE,
        _licence,
        json=False,
    ),
    "health": Route("GET", "v1/health", "anonymous", EVERYONE, _keys("status", "dependencies")),
    "liveness": Route("GET", "v1/health/live", "anonymous", EVERYONE, _keys("status")),
    "openapi": Route("GET", "v1/openapi.json", "anonymous", EVERYONE, _keys("openapi", "paths")),
}


def expected_status(route: Route, credential: str, mode: str) -> int:
    """SPEC 10's answer for one cell of the matrix."""
    if route.public:
        return 200
    if credential == "none":
        return 401
    if credential in ("function_key", "master_key"):
        if mode == "principal":
            return 401  # keys say nothing about a person
        if credential == "function_key" and route.level == "admin":
            return 401  # the host refuses it
        return 202 if route.method == "POST" else 200
    if credential == "malformed":
        return 403
    if route.method == "POST":
        return 202 if credential in route.allowed else 422
    if credential == "service" and route.level == "admin":
        return 403
    return 200 if credential in route.allowed else 403


def request_for(
    world: World, route: Route, credential: str, mode: str
) -> tuple[str, dict[str, str], dict[str, Any] | None, dict[str, str]]:
    """(path, headers, JSON body, the ids filled in) of one cell."""
    filled = dict(world.ids) | {"victim": f.new_id()}
    path = route.path.format(**filled)
    headers: dict[str, str] = {}
    route_key = MASTER_KEY if route.level == "admin" else FUNCTION_KEY
    if credential == "function_key":
        headers["x-functions-key"] = FUNCTION_KEY
    elif credential == "master_key":
        headers["x-functions-key"] = MASTER_KEY
    elif credential != "none":
        # In keys mode people come through a program holding the route's key,
        # and their principal narrows what that key allows.
        if mode == "keys":
            headers["x-functions-key"] = route_key
        if credential == "malformed":
            headers["X-MS-CLIENT-PRINCIPAL"] = "eyJub3QiOiAiYSBwcmluY2lwYWwifQ=="
        else:
            headers["X-MS-CLIENT-PRINCIPAL"] = f.principal(
                world.ids[credential], ROLE_OF[credential], name=f"{credential}@school.example"
            )
    body = None
    if route.method == "POST":
        body = f.lesson_progress(student_id=world.student_self, lesson_id=world.lesson)
    return path, headers, body, filled


def last_log_id(test_run: TestRun) -> int:
    return int(rows(test_run.postgres_dsn, "SELECT coalesce(max(id), 0) FROM access_log")[0][0])


CASES = [
    pytest.param(mode, name, credential, id=f"{mode}-{name}-{credential}")
    for mode in MODES
    for name in ROUTES
    for credential in CREDENTIALS
]


@pytest.mark.parametrize(("mode", "name", "credential"), CASES)
def test_who_may_see_what(
    request: pytest.FixtureRequest,
    world: World,
    test_run: TestRun,
    mode: str,
    name: str,
    credential: str,
) -> None:
    route = ROUTES[name]
    running: DevHost = request.getfixturevalue("host" if mode == "keys" else "principal_host")
    path, headers, body, filled = request_for(world, route, credential, mode)
    before = last_log_id(test_run)
    response = httpx.request(
        route.method, running.url(path), headers=headers, json=body, timeout=30
    )
    status = expected_status(route, credential, mode)
    assert response.status_code == status, response.text
    if status in (200, 202):
        route.check(world, response.json() if route.json else response.text, credential)
        if route.person and route.recorded:
            # Who read it, by principal (id and name) or by key, never the key.
            (entry,) = entries(test_run, before, "disclosed")
            assert entry["subject_id"] == uuid.UUID(filled[route.person])
            assert entry["resource"] == f"/api/{path}"
            if credential in PERSONS:
                assert entry["accessor"].startswith(f"principal:{credential}@school.example")
                assert world.ids[credential] in entry["accessor"]
            else:
                assert entry["accessor"].split(":")[0] in ("key", "admin-key")
                assert MASTER_KEY not in entry["accessor"]
                assert FUNCTION_KEY not in entry["accessor"]
        return
    if status == 401:
        # From the host (keys mode: no body) or the app (principal mode: why).
        assert response.content == b"" or set(response.json()) == {"error"}
        return
    if status == 422:
        rejected = response.json()
        assert rejected["accepted"] == 0
        assert rejected["event_ids"] == []
        errors = rejected["rejected"][0]["errors"]
        assert [error["field"] for error in errors] == ["student_id"]
        assert "own-events" in errors[0]["message"]
        refused = refusals(test_run, before)
        assert [(r["subject_id"], r["rule"]) for r in refused] == [
            (uuid.UUID(world.student_self), "own-events")
        ]
        assert str(world.ids[credential]) in refused[0]["accessor"]
        return
    # 403: no data, only why; and the attempt is on record.
    assert set(response.json()) == {"error"}
    message = response.json()["error"]
    for value in world.ids.values():
        assert value not in message
    refused = refusals(test_run, before)
    assert len(refused) == 1, refused
    entry = refused[0]
    assert entry["resource"] == f"/api/{path}"
    if credential == "malformed":
        assert entry["rule"] == "principal"
        assert entry["accessor"].startswith("invalid-principal:")
    else:
        assert entry["rule"] == route.rule
        assert f"rule {route.rule}:" in message
        assert entry["accessor"].startswith(f"principal:{credential}@school.example")
        assert str(world.ids[credential]) in entry["accessor"]
    subject = uuid.UUID(filled[route.person]) if route.person else None
    assert entry["subject_id"] == subject


def refusals(test_run: TestRun, after: int) -> list[dict[str, Any]]:
    return entries(test_run, after, "refused")


def entries(test_run: TestRun, after: int, outcome: str) -> list[dict[str, Any]]:
    found = rows(
        test_run.postgres_dsn,
        "SELECT subject_id, accessor, action, resource, rule FROM access_log "
        "WHERE id > %s AND outcome = %s ORDER BY id",
        after,
        outcome,
    )
    return [
        dict(zip(("subject_id", "accessor", "action", "resource", "rule"), row, strict=True))
        for row in found
    ]


def test_the_matrix_covers_every_http_route(app_functions: list[Any]) -> None:
    declared = {
        (trigger.route, str(method.value if hasattr(method, "value") else method))
        for fn in app_functions
        if (trigger := fn.get_trigger()).type == "httpTrigger"
        for method in trigger.methods
    }
    covered = {
        (route.path.replace("{student_self}", "{student_id}"), route.method)
        for route in ROUTES.values()
    }
    normalised = {
        (
            path.replace("{quiz}", "{quiz_id}")
            .replace("{lesson}", "{lesson_id}")
            .replace("{session}", "{session_id}")
            .replace("{teacher_interest}", "{teacher_id}")
            .replace("{victim}", "{user_id}"),
            method,
        )
        for path, method in covered
    }
    normalised.add(("dashboard/{*path}", "GET"))  # one static file stands for the catch-all
    for path, method in list(normalised):
        if path.startswith("v1/users/{student_id}"):
            normalised.add((path.replace("{student_id}", "{user_id}"), method))
    assert declared <= normalised, declared - normalised
