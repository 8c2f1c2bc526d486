"""What the dashboards poll (SPEC 11): a lesson's students live from Redis, and
ETag / 304 on every live view, so an unchanged view costs a version lookup."""

from __future__ import annotations

import httpx
import pytest

from devhost import DevHost
from shared.repositories.realtime import RealtimeRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import FUNCTION_KEY, MASTER_KEY, rows
from tests.integration.test_realtime import flush


def test_a_lessons_students_most_recent_first_and_the_same_after_a_flush(
    client: httpx.Client, host: DevHost, redis_views: RealtimeRepository
) -> None:
    lesson = f.new_id()
    students = [f.new_id() for _ in range(3)]
    events = [
        f.lesson_progress(
            student_id=student,
            lesson_id=lesson,
            progress_percent=10.0 * (n + 1),
            sections_read=[f"s{n}"],
            last_accessed_at=f.ago(minutes=30 - n),
        )
        for n, student in enumerate(students)
    ]
    # An older event of the first student changes nothing but the merge.
    events.append(
        f.lesson_progress(
            student_id=students[0],
            lesson_id=lesson,
            progress_percent=5.0,
            sections_read=["intro"],
            started_at=f.ago(hours=5),
            last_accessed_at=f.ago(hours=4),
        )
    )
    assert client.post("v1/events", json={"events": events}).status_code == 202
    live = client.get(f"v1/lessons/{lesson}/progress").json()
    assert [s["student_id"] for s in live["students"]] == students[::-1]
    first = live["students"][-1]
    assert first["progress_percent"] == 10.0
    assert first["sections_read"] == ["intro", "s0"]
    assert first["started_at"] == rows_started(events[-1]["started_at"])
    assert (
        client.get(f"v1/lessons/{lesson}/progress", params={"limit": "2"}).json()["students"]
        == live["students"][:2]
    )

    host.wait_idle(timeout=60)
    flush(redis_views)
    assert client.get(f"v1/lessons/{lesson}/progress").json() == live  # rebuilt from PostgreSQL


@pytest.mark.parametrize(
    "view",
    ["progress", "lesson", "leaderboard", "notifications", "live"],
)
def test_an_unchanged_live_view_is_a_304_and_a_change_a_new_etag(
    client: httpx.Client, host: DevHost, view: str
) -> None:
    student, lesson, quiz, author, session = (f.new_id() for _ in range(5))
    post = f.new_id()
    path, change = {
        "progress": (
            f"v1/students/{student}/progress",
            lambda: f.lesson_progress(student_id=student, progress_percent=70.0),
        ),
        "lesson": (
            f"v1/lessons/{lesson}/progress",
            lambda: f.lesson_progress(lesson_id=lesson),
        ),
        "leaderboard": (
            f"v1/quizzes/{quiz}/leaderboard",
            lambda: f.quiz_attempt(quiz_id=quiz),
        ),
        "notifications": (
            f"v1/users/{author}/notifications",
            lambda: f.forum_activity(post_id=post, action_type="like", content=None),
        ),
        "live": (
            f"v1/live/sessions/{session}",
            lambda: f.live_class_engagement(session_id=session),
        ),
    }[view]
    seed = [
        f.lesson_progress(student_id=student),
        f.lesson_progress(lesson_id=lesson),
        f.quiz_attempt(quiz_id=quiz),
        f.forum_activity(user_id=author, post_id=post),
        f.live_class_engagement(session_id=session),
    ]
    assert client.post("v1/events", json={"events": seed}).status_code == 202

    first = client.get(path)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = client.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == tag

    assert client.post("v1/events", json=change()).status_code == 202
    changed = client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert changed.json() != first.json()


def test_the_etag_differs_by_who_asks_and_a_304_is_not_a_disclosure(
    host: DevHost, test_run: TestRun
) -> None:
    quiz, me, other = f.new_id(), f.new_id(), f.new_id()
    attempts = [f.quiz_attempt(quiz_id=quiz, student_id=s) for s in (me, other)]
    progress = f.lesson_progress(student_id=me)
    as_key = {"x-functions-key": FUNCTION_KEY}
    as_me = as_key | {"X-MS-CLIENT-PRINCIPAL": f.principal(me, "Student")}
    with httpx.Client(base_url=host.url(""), timeout=30) as http:
        assert http.post("v1/events", json={"events": [*attempts, progress]}, headers=as_key)
        board = f"v1/quizzes/{quiz}/leaderboard"
        full, mine = http.get(board, headers=as_key), http.get(board, headers=as_me)
        assert full.headers["ETag"] != mine.headers["ETag"]
        # A student's cached full board could never be revalidated into theirs.
        assert (
            http.get(board, headers=as_me | {"If-None-Match": full.headers["ETag"]}).json()[
                "viewer"
            ]["student_id"]
            == me
        )
        assert (
            http.get(board, headers=as_key | {"If-None-Match": full.headers["ETag"]}).status_code
            == 304
        )

        def disclosures() -> int:
            found = rows(
                test_run.postgres_dsn,
                "SELECT count(*) FROM access_log WHERE subject_id = %s AND action = 'progress'",
                me,
            )
            return int(found[0][0])

        own = f"v1/students/{me}/progress"
        tag = http.get(own, headers=as_me).headers["ETag"]
        assert disclosures() == 1
        for _ in range(3):
            assert http.get(own, headers=as_me | {"If-None-Match": tag}).status_code == 304
        assert disclosures() == 1  # nothing new was sent


def test_an_erasure_changes_the_views_it_touched(client: httpx.Client, host: DevHost) -> None:
    quiz, leaving, staying = f.new_id(), f.new_id(), f.new_id()
    attempts = [f.quiz_attempt(quiz_id=quiz, student_id=s) for s in (leaving, staying)]
    assert client.post("v1/events", json={"events": attempts}).status_code == 202
    board = f"v1/quizzes/{quiz}/leaderboard"
    tag = client.get(board).headers["ETag"]
    host.wait_idle(timeout=60)
    erased = client.delete(f"v1/users/{leaving}", headers={"x-functions-key": MASTER_KEY})
    assert erased.status_code == 200
    after = client.get(board, headers={"If-None-Match": tag})
    assert after.status_code == 200
    assert [e["student_id"] for e in after.json()["entries"]] == [staying]


def rows_started(iso: str) -> str:
    """A timestamp as the API writes it (UTC, microseconds, Z)."""
    from datetime import datetime

    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
