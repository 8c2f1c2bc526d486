"""People, not only keys (SPEC 10), end to end: a student's batch, a student's
leaderboard, signing in on the local host, and the functions' metadata per mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devhost import DevHost
from shared.repositories.realtime import RealtimeRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import (
    FUNCTION_KEY,
    ROOT,
    host_environ,
    rows,
    running_host,
)


def as_person(user_id: str, *roles: str) -> dict[str, str]:
    return {"x-functions-key": FUNCTION_KEY, "X-MS-CLIENT-PRINCIPAL": f.principal(user_id, *roles)}


def test_a_students_batch_naming_another_student_keeps_the_others(
    host: DevHost, test_run: TestRun
) -> None:
    me, classmate = f.new_id(), f.new_id()
    mine = [f.lesson_progress(student_id=me), f.forum_activity(user_id=me)]
    theirs = f.quiz_attempt(student_id=classmate)
    teachers = f.feedback(student_id=me)  # a teacher's event, even if it is about me
    batch = [mine[0], theirs, mine[1], teachers]
    response = httpx.post(
        host.url("v1/events"),
        json={"events": batch},
        headers=as_person(me, "Student"),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["event_ids"] == [mine[0]["event_id"], mine[1]["event_id"]]
    assert [(r["index"], [e["field"] for e in r["errors"]]) for r in body["rejected"]] == [
        (1, ["student_id"]),
        (3, ["teacher_id"]),
    ]
    host.wait_idle(timeout=60)
    stored = rows(
        test_run.postgres_dsn,
        "SELECT event_id::text FROM event_ledger WHERE event_id = ANY(%s::uuid[])",
        [event["event_id"] for event in batch],
    )
    assert sorted(row[0] for row in stored) == sorted(e["event_id"] for e in mine)
    # Both people someone tried to write as are on record as refused attempts.
    refused = rows(
        test_run.postgres_dsn,
        "SELECT subject_id::text, rule FROM access_log "
        "WHERE outcome = 'refused' AND accessor LIKE %s ORDER BY subject_id",
        f"%({me})%",
    )
    assert sorted(refused) == sorted(
        [(classmate, "own-events"), (teachers["teacher_id"], "own-events")]
    )


def test_a_student_sees_their_own_rank_and_no_other_students_id(
    host: DevHost, client: httpx.Client, redis_views: RealtimeRepository
) -> None:
    quiz, me = f.new_id(), f.new_id()
    others = [f.new_id() for _ in range(4)]
    attempts = [
        f.quiz_attempt(student_id=student, quiz_id=quiz, score=score)
        for student, score in zip(others, (9.0, 8.0, 7.0, 1.0), strict=True)
    ] + [f.quiz_attempt(student_id=me, quiz_id=quiz, score=5.0)]
    assert client.post("v1/events", json={"events": attempts}).status_code == 202
    host.wait_idle(timeout=60)

    board = httpx.get(
        host.url(f"v1/quizzes/{quiz}/leaderboard"),
        params={"limit": "2"},
        headers=as_person(me, "Student"),
        timeout=30,
    ).json()
    # Outside the top 2: ranks and scores shown, ids hidden, own entry added.
    assert board["entries"] == [
        {"rank": 1, "student_id": None, "best_score": 9.0, "attempts": 1},
        {"rank": 2, "student_id": None, "best_score": 8.0, "attempts": 1},
    ]
    assert board["viewer"] == {"rank": 4, "student_id": me, "best_score": 5.0, "attempts": 1}
    text = str(board)
    assert not any(other in text for other in others)

    # The same answer when Redis no longer holds the board (rebuilt from PostgreSQL).
    redis_views.client.delete(
        *(
            redis_views.key(*parts, quiz)
            for parts in (("lb",), ("lbs",), ("lbatt",), ("loaded", "lb"))
        )
    )
    full = httpx.get(
        host.url(f"v1/quizzes/{quiz}/leaderboard"), headers=as_person(me, "Student"), timeout=30
    ).json()
    assert [entry["student_id"] for entry in full["entries"]] == [None, None, None, me, None]
    assert full["viewer"] == board["viewer"]


@pytest.fixture
def signed_in_host(test_run: TestRun) -> Iterator[DevHost]:
    """The app in AUTH_MODE=principal on a host that plays Easy Auth and trusts no client."""
    environ = host_environ(test_run, AUTH_MODE="principal", LOCAL_TRUST_CLIENT_PRINCIPAL="0")
    with running_host(ROOT, environ, queues=False, timers=False) as running:
        yield running


def sign_in(host: DevHost, user_id: str, role: str) -> httpx.Client:
    browser = httpx.Client(base_url=host.base_url, timeout=30)
    response = browser.post(
        "/.auth/login/dev",
        data={"user_id": user_id, "name": f"{role} {user_id[:4]}", "roles": role},
    )
    assert response.status_code == 303, response.text
    return browser


def test_signing_in_on_the_local_host_makes_the_app_know_the_person(
    signed_in_host: DevHost, host: DevHost, client: httpx.Client
) -> None:
    me, stranger = f.new_id(), f.new_id()
    assert client.post("v1/events", json=f.lesson_progress(student_id=me)).status_code == 202
    host.wait_idle(timeout=60)
    own, other = f"/api/v1/students/{me}/progress", f"/api/v1/students/{stranger}/progress"

    # A principal the client made up is stripped, as Easy Auth strips it.
    forged = {"X-MS-CLIENT-PRINCIPAL": f.principal(me, "Admin")}
    anonymous = httpx.get(signed_in_host.base_url + own, headers=forged, timeout=30)
    assert anonymous.status_code == 401
    assert "sign in" in anonymous.json()["error"]

    browser = sign_in(signed_in_host, me, "Student")
    try:
        mine = browser.get(own)
        assert mine.status_code == 200, mine.text
        assert mine.json()["student_id"] == me
        refused = browser.get(other)
        assert refused.status_code == 403
        assert "student-record" in refused.json()["error"]
        assert browser.get("/.auth/me").json()[0]["user_id"] == me
        browser.get("/.auth/logout")
        assert browser.get(own).status_code == 401
    finally:
        browser.close()


def test_the_auth_level_in_the_metadata_follows_auth_mode(
    signed_in_host: DevHost, app_functions: list[Any]
) -> None:
    levels = {fn.name: fn.trigger.auth_level for fn in signed_in_host.functions if _http(fn)}
    assert set(levels.values()) == {"anonymous"}
    keys_mode = {
        fn.get_function_name(): str(fn.get_trigger().auth_level.value).lower()
        for fn in app_functions
        if fn.get_trigger().type == "httpTrigger"
    }
    assert set(levels) == set(keys_mode)
    assert keys_mode["erase_user"] == "admin"
    assert keys_mode["student_report"] == "function"
    assert keys_mode["health"] == "anonymous"


def _http(fn: Any) -> bool:
    return hasattr(fn.trigger, "auth_level")
