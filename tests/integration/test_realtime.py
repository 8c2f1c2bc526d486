"""The real-time read API (SPEC section 7) through the local host, against real
Redis and PostgreSQL: visible at once, same answers after a flush, degrades to
PostgreSQL when Redis is down, uses Redis again when it is back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost import DevHost
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.repositories.redis_keys import BUCKET, BUCKETS, CLAIM, CLAIMS
from shared.services.rollup import run_rollup
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import (
    FUNCTION_KEY,
    fast_app_dir,
    host_environ,
    poisoned,
    rows,
    running_host,
    wait_until_stored,
)
from tests.integration.services import PrivateRedis


def flush(views: RealtimeRepository) -> None:
    """Lose every real-time key of this session (as a Redis restart would)."""
    counters = {BUCKET, BUCKETS, CLAIM, CLAIMS}  # kept: other tests count them
    for key in views.client.scan_iter(match=f"{views.prefix}*", count=1000):
        parsed = views.keys.parse(key)
        if parsed is None or parsed[0] not in counters:
            views.client.delete(key)


def test_progress_is_visible_right_after_the_202_and_merged(
    client: httpx.Client, host: DevHost, redis_views: RealtimeRepository
) -> None:
    student, lesson = f.new_id(), f.new_id()
    later = f.lesson_progress(
        student_id=student,
        lesson_id=lesson,
        started_at="2026-11-02T10:00:00Z",
        progress_percent=80.0,
        video_watch_time=600,
        sections_read=["b", "c"],
        last_accessed_at="2026-11-02T11:00:00Z",
    )
    earlier = f.lesson_progress(
        student_id=student,
        lesson_id=lesson,
        started_at="2026-11-02T09:30:00Z",
        progress_percent=20.0,
        video_watch_time=120,
        sections_read=["a"],
        last_accessed_at="2026-11-02T09:45:00Z",
    )
    assert client.post("v1/events", json=later).status_code == 202
    assert client.post("v1/events", json=earlier).status_code == 202
    # No waiting: the ingest request itself updated Redis before answering.
    body = client.get(f"v1/students/{student}/progress").json()
    assert body == {
        "student_id": student,
        "lessons": [
            {
                "lesson_id": lesson,
                "started_at": "2026-11-02T09:30:00Z",
                "completed_at": None,
                "progress_percent": 80.0,
                "video_watch_time": 600,
                "sections_read": ["a", "b", "c"],
                "last_accessed_at": "2026-11-02T11:00:00Z",
            }
        ],
    }
    host.wait_idle(timeout=60)
    flush(redis_views)
    assert client.get(f"v1/students/{student}/progress").json() == body  # rebuilt from PostgreSQL
    assert redis_views.progress(student) is not None  # and Redis holds it again


def _attempt(quiz: str, student: str, score: float, at: str, **over: Any) -> dict[str, Any]:
    return f.quiz_attempt(quiz_id=quiz, student_id=student, score=score, submitted_at=at, **over)


def test_leaderboard_ranks_best_score_then_earlier_best_then_student(
    client: httpx.Client, host: DevHost, redis_views: RealtimeRepository
) -> None:
    quiz = f.new_id()
    a, b, c, d = sorted(f.new_id() for _ in range(4))
    attempts = [
        _attempt(quiz, c, 9.0, "2026-11-03T10:00:00Z"),
        _attempt(quiz, a, 7.0, "2026-11-03T09:00:00Z"),
        _attempt(quiz, a, 9.0, "2026-11-03T10:00:00Z", attempt_number=2),  # ties c: a < c
        _attempt(quiz, b, 9.0, "2026-11-03T08:00:00Z"),  # earliest 9.0: first
        _attempt(quiz, d, 10.0, "2026-11-03T12:00:00Z"),
        _attempt(quiz, d, 4.0, "2026-11-03T13:00:00Z", attempt_number=2),
    ]
    # Any arrival order gives the same board; send them reversed.
    assert client.post("v1/events", json={"events": attempts[::-1]}).status_code == 202
    expected = [
        {"rank": 1, "student_id": d, "best_score": 10.0, "attempts": 2},
        {"rank": 2, "student_id": b, "best_score": 9.0, "attempts": 1},
        {"rank": 3, "student_id": a, "best_score": 9.0, "attempts": 2},
        {"rank": 4, "student_id": c, "best_score": 9.0, "attempts": 1},
    ]
    board = client.get(f"v1/quizzes/{quiz}/leaderboard").json()
    assert board == {"quiz_id": quiz, "entries": expected}
    assert client.get(f"v1/quizzes/{quiz}/leaderboard?limit=2").json()["entries"] == expected[:2]
    # The same attempt again, or another event for the same attempt_id, counts once.
    again = dict(attempts[0], event_id=f.new_id())
    assert client.post("v1/events", json={"events": [attempts[0], again]}).status_code == 202
    assert client.get(f"v1/quizzes/{quiz}/leaderboard").json()["entries"] == expected
    host.wait_idle(timeout=60)
    flush(redis_views)
    assert client.get(f"v1/quizzes/{quiz}/leaderboard").json()["entries"] == expected


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "limit=-3"])
def test_leaderboard_limit_is_validated(client: httpx.Client, query: str) -> None:
    response = client.get(f"v1/quizzes/{f.new_id()}/leaderboard?{query}")
    assert response.status_code == 400
    assert "limit" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "v1/students/not-a-uuid/progress",
        "v1/quizzes/1234/leaderboard",
        "v1/users/x'--/notifications",
        "v1/live/sessions/%00",
    ],
)
def test_ids_in_paths_must_be_uuids(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert "must be a UUID" in response.json()["error"]


def test_notifications_for_replies_and_likes_by_others(
    client: httpx.Client, host: DevHost, redis_views: RealtimeRepository
) -> None:
    author, replier, liker = f.new_id(), f.new_id(), f.new_id()
    thread, post_id = f.new_id(), f.new_id()
    post = f.forum_activity(
        user_id=author, post_id=post_id, thread_id=thread, created_at="2026-11-04T10:00:00Z"
    )
    reply = f.forum_activity(
        user_id=replier,
        thread_id=thread,
        action_type="reply",
        parent_post_id=post_id,
        created_at="2026-11-04T10:05:00Z",
    )
    like = f.forum_activity(
        user_id=liker,
        post_id=post_id,
        thread_id=thread,
        action_type="like",
        content=None,
        created_at="2026-11-04T10:10:00Z",
    )
    own_like = dict(like, event_id=f.new_id(), user_id=author, created_at="2026-11-04T10:20:00Z")
    # The like arrives before the post it likes: it waits for the post's author.
    for event in (like, post, reply, own_like):
        assert client.post("v1/events", json=event).status_code == 202
    expected = [
        {
            "type": "like",
            "post_id": post_id,
            "thread_id": thread,
            "actor_id": liker,
            "created_at": "2026-11-04T10:10:00Z",
            "event_id": like["event_id"],
        },
        {
            "type": "reply",
            "post_id": post_id,
            "thread_id": thread,
            "actor_id": replier,
            "created_at": "2026-11-04T10:05:00Z",
            "event_id": reply["event_id"],
        },
    ]
    body = client.get(f"v1/users/{author}/notifications").json()
    assert body == {"user_id": author, "notifications": expected}
    assert client.get(f"v1/users/{author}/notifications?limit=1").json()["notifications"] == [
        expected[0]
    ]
    assert client.get(f"v1/users/{liker}/notifications").json()["notifications"] == []
    host.wait_idle(timeout=60)
    flush(redis_views)
    assert client.get(f"v1/users/{author}/notifications").json()["notifications"] == expected


def test_live_session_dashboard(
    client: httpx.Client, host: DevHost, redis_views: RealtimeRepository
) -> None:
    session, klass, lead, assistant = f.new_id(), f.new_id(), f.new_id(), f.new_id()
    poll1, poll2 = sorted([f.new_id(), f.new_id()])
    common = {"session_id": session, "class_id": klass}
    events = [
        f.live_class_engagement(
            teacher_id=lead,
            joined_at="2026-11-05T09:00:00Z",
            duration_seconds=600,
            polls_launched=[poll2],
            messages_sent=3,
            **common,
        ),
        f.live_class_engagement(
            teacher_id=lead,
            joined_at="2026-11-05T09:00:00Z",
            duration_seconds=1200,
            polls_launched=[poll1],
            messages_sent=9,
            **common,
        ),
        f.live_class_engagement(
            teacher_id=assistant,
            joined_at="2026-11-05T09:10:00Z",
            left_at="2026-11-05T09:40:00Z",
            duration_seconds=1800,
            polls_launched=[],
            messages_sent=1,
            **common,
        ),
    ]
    for event in events[:2]:
        del event["left_at"]  # still in the session
    assert client.post("v1/events", json={"events": events}).status_code == 202
    expected = {
        "session_id": session,
        "class_id": klass,
        "teachers": [
            {
                "teacher_id": lead,
                "joined_at": "2026-11-05T09:00:00Z",
                "left_at": None,
                "duration_seconds": 1200,
                "polls_launched": [poll1, poll2],
                "messages_sent": 9,
                "active": True,
            },
            {
                "teacher_id": assistant,
                "joined_at": "2026-11-05T09:10:00Z",
                "left_at": "2026-11-05T09:40:00Z",
                "duration_seconds": 1800,
                "polls_launched": [],
                "messages_sent": 1,
                "active": False,
            },
        ],
    }
    assert client.get(f"v1/live/sessions/{session}").json() == expected
    host.wait_idle(timeout=60)
    flush(redis_views)
    assert client.get(f"v1/live/sessions/{session}").json() == expected
    missing = client.get(f"v1/live/sessions/{f.new_id()}")
    assert missing.status_code == 404
    assert "no live session" in missing.json()["error"]


# --- Redis down, and back --------------------------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def test_redis_down_then_back(
    test_run: TestRun,
    scratch_dir: Path,
    private_redis: PrivateRedis,
    postgres: PostgresRepository,
) -> None:
    environ = host_environ(
        test_run,
        REDIS_URL=private_redis.url,
        REALTIME_QUEUE=f"t{test_run.run_id}-rt-down",
        ROLLUP_BUCKET_SECONDS="1",
        SINK_RETRY_DELAYS="1",  # the catch-up waits for Redis, retrying every second
    )
    student = f.new_id()
    lesson = f.new_id()
    first = f.lesson_progress(student_id=student, lesson_id=lesson, progress_percent=10.0)
    second = f.lesson_progress(student_id=student, lesson_id=lesson, progress_percent=60.0)
    third = f.lesson_progress(student_id=student, lesson_id=lesson, progress_percent=90.0)
    with running_host(fast_app_dir(scratch_dir), environ, timers=False) as host:
        http = httpx.Client(
            base_url=host.url(""), headers={"x-functions-key": FUNCTION_KEY}, timeout=30
        )
        assert http.post("v1/events", json=first).status_code == 202
        progress = http.get(f"v1/students/{student}/progress").json()
        assert progress["lessons"][0]["progress_percent"] == 10.0
        host.wait_idle(timeout=60)
        views = RealtimeRepository(private_redis.url, test_run.redis_prefix, 1)
        future = datetime.now(UTC) + timedelta(seconds=30)
        assert run_rollup(views, postgres, now=future).committed == 1  # "first" is counted

        private_redis.stop()
        assert http.post("v1/events", json=second).status_code == 202  # ingest unaffected
        health = http.get("v1/health")
        assert health.status_code == 200  # events are accepted, views answer: degraded
        assert health.json()["status"] == "degraded"
        assert health.json()["dependencies"]["redis"]["status"] == "down"
        wait_until_stored(test_run, second["event_id"])
        fallback = http.get(f"v1/students/{student}/progress")
        assert fallback.status_code == 200
        assert fallback.json()["lessons"][0]["progress_percent"] == 60.0  # from PostgreSQL
        assert "ETag" not in fallback.headers  # no version without Redis: always the full answer
        class_view = http.get(f"v1/lessons/{lesson}/progress")
        assert class_view.status_code == 200
        assert class_view.json()["students"][0]["progress_percent"] == 60.0

        private_redis.start()  # an empty Redis, as after a restart
        assert http.post("v1/events", json=third).status_code == 202
        back = http.get(f"v1/students/{student}/progress").json()
        assert back["lessons"][0]["progress_percent"] == 90.0  # Redis used again, rebuilt
        rebuilt = http.get(f"v1/lessons/{lesson}/progress")
        assert rebuilt.json()["students"][0]["progress_percent"] == 90.0
        assert rebuilt.headers["ETag"]
        assert http.get("v1/health").json()["status"] == "ok"
        # Catch-up: the message that failed while Redis was down waited and is applied.
        host.wait_idle(timeout=60)
        assert poisoned(test_run.storage_connection, environ["REALTIME_QUEUE"]) == 0
        run_rollup(views, postgres, now=datetime.now(UTC) + timedelta(seconds=30))
        views.close()
    # Every accepted event counted exactly once, across the outage (1 s buckets
    # are this test's own: no other test uses that width).
    totals = rows(
        test_run.postgres_dsn,
        "SELECT sum(value) FROM activity_rollups WHERE bucket_seconds = 1 "
        "AND metric = 'events' AND dimension = 'lesson_progress'",
    )
    assert totals[0][0] == 3
