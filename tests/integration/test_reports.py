"""Reports and recommendations (SPEC section 8) on small hand-made data sets.

Every expected figure is worked out here, in Python, from the raw events the
test stores, never from the SQL. Each test uses fresh UUIDs; the global
reports (forum, activity) are read with windows or filters that only this
test's data can match.
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from devhost import DevHost
from shared.models.events import ActivityEvent, event_adapter
from shared.models.rollups import RollupRow
from shared.repositories.postgres import PostgresRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import rows

NOW = datetime.now(UTC).replace(microsecond=0)


def at(**delta: float) -> str:
    return f.iso(NOW - timedelta(**delta))


def new() -> str:
    return str(uuid.uuid4())


def store(postgres: PostgresRepository, raws: Sequence[dict[str, Any]]) -> None:
    events: list[ActivityEvent] = [event_adapter.validate_python(raw) for raw in raws]
    postgres.persist_events(events, NOW)


def get(client: httpx.Client, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def avg(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


# --- student report ---------------------------------------------------------------------


def test_a_student_without_data_gets_zeros_not_errors(client: httpx.Client) -> None:
    student = new()
    assert get(client, f"v1/reports/students/{student}") == {
        "student_id": student,
        "lessons_started": 0,
        "lessons_completed": 0,
        "avg_progress_percent": None,
        "total_video_watch_time": 0,
        "quiz_attempts": 0,
        "quizzes_passed": 0,
        "avg_quiz_score": None,
        "forum_posts": 0,
        "forum_replies": 0,
        "likes_given": 0,
        "likes_received": 0,
        "feedback_received": 0,
        "avg_feedback_score": None,
        "recent_activity": [],
    }


def test_student_report_counts_every_field_once(
    client: httpx.Client, postgres: PostgresRepository
) -> None:
    student, other, another, teacher = new(), new(), new(), new()
    lesson_done, lesson_open = new(), new()
    quiz_passed, quiz_failed = new(), new()
    thread, post, reply, foreign_post = new(), new(), new(), new()
    progress = [
        f.lesson_progress(
            student_id=student,
            lesson_id=lesson_done,
            started_at=at(days=3),
            completed_at=at(days=2),
            progress_percent=100.0,
            video_watch_time=600,
            last_accessed_at=at(days=2),
        ),
        # Out of order: the later state is stored first; the merge keeps the max.
        f.lesson_progress(
            student_id=student,
            lesson_id=lesson_open,
            started_at=at(days=1),
            progress_percent=40.0,
            video_watch_time=300,
            last_accessed_at=at(hours=5),
        ),
        f.lesson_progress(
            student_id=student,
            lesson_id=lesson_open,
            started_at=at(days=1),
            progress_percent=20.0,
            video_watch_time=200,
            last_accessed_at=at(hours=20),
        ),
    ]
    attempts = [
        f.quiz_attempt(
            student_id=student, quiz_id=quiz_passed, attempt_number=1, score=4.0,
            is_passed=False, submitted_at=at(hours=10),
        ),
        f.quiz_attempt(
            student_id=student, quiz_id=quiz_passed, attempt_number=2, score=8.0,
            is_passed=True, submitted_at=at(hours=9),
        ),
        f.quiz_attempt(
            student_id=student, quiz_id=quiz_failed, attempt_number=1, score=3.0,
            is_passed=False, submitted_at=at(hours=8),
        ),
    ]  # fmt: skip
    # The same attempt resent under a fresh event_id: one attempt, not two.
    resent_attempt = attempts[1] | {"event_id": new()}
    forum = [
        f.forum_activity(user_id=student, post_id=post, thread_id=thread, created_at=at(hours=7)),
        f.forum_activity(
            user_id=student, post_id=reply, thread_id=thread, action_type="reply",
            parent_post_id=post, content="Answering myself", created_at=at(hours=6),
        ),
        f.forum_activity(
            user_id=student, post_id=foreign_post, thread_id=thread, action_type="like",
            content=None, created_at=at(hours=4),
        ),
        # A like of one's own post: a like given, not a like received.
        f.forum_activity(
            user_id=student, post_id=post, thread_id=thread, action_type="like", content=None,
            created_at=at(hours=3),
        ),
    ]  # fmt: skip
    likes_by_others = [
        f.forum_activity(
            user_id=other, post_id=post, thread_id=thread, action_type="like", content=None,
            created_at=at(hours=2),
        ),
        f.forum_activity(
            user_id=another, post_id=reply, thread_id=thread, action_type="like", content=None,
            created_at=at(hours=2),
        ),
    ]  # fmt: skip
    feedback = [
        f.feedback(teacher_id=teacher, student_id=student, score=8.0, created_at=at(hours=1)),
        f.feedback(teacher_id=teacher, student_id=student, score=None, created_at=at(minutes=50)),
        f.feedback(teacher_id=new(), student_id=student, score=6.0, created_at=at(minutes=40)),
    ]
    everything = progress + attempts + forum + likes_by_others + feedback
    store(postgres, everything)
    # Redeliveries: the same events again, and the resent attempt.
    store(postgres, [likes_by_others[0], feedback[0], progress[1], resent_attempt])

    report = get(client, f"v1/reports/students/{student}")

    mine = progress + attempts + forum + feedback  # events naming the student
    newest = sorted(
        mine,
        key=lambda raw: (parse(event_time(raw)), uuid.UUID(raw["event_id"])),
        reverse=True,
    )[:20]
    assert report == {
        "student_id": student,
        "lessons_started": 2,
        "lessons_completed": 1,
        "avg_progress_percent": avg([100.0, 40.0]),
        "total_video_watch_time": 600 + 300,
        "quiz_attempts": 3,
        "quizzes_passed": 1,
        "avg_quiz_score": avg([4.0, 8.0, 3.0]),
        "forum_posts": 1,
        "forum_replies": 1,
        "likes_given": 2,
        "likes_received": 2,
        "feedback_received": 3,
        "avg_feedback_score": avg([8.0, 6.0]),
        "recent_activity": [
            {
                "event_id": raw["event_id"],
                "type": raw["type"],
                "actor_id": raw.get("teacher_id") if raw["type"] == "feedback" else student,
                "occurred_at": event_time(raw),
            }
            for raw in newest
        ],
    }


def event_time(raw: dict[str, Any]) -> str:
    """The event time of a raw event, as the API prints it (UTC, Z)."""
    model = event_adapter.validate_python(raw)
    return model.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_a_student_with_only_failed_attempts(
    client: httpx.Client, postgres: PostgresRepository
) -> None:
    student, quiz = new(), new()
    scores = [2.0, 3.0, 5.0]
    store(
        postgres,
        [
            f.quiz_attempt(
                student_id=student, quiz_id=quiz, attempt_number=n + 1, score=score,
                is_passed=False, duration_seconds=100 * (n + 1),
            )
            for n, score in enumerate(scores)
        ],
    )  # fmt: skip
    report = get(client, f"v1/reports/students/{student}")
    assert (report["quiz_attempts"], report["quizzes_passed"]) == (3, 0)
    assert report["avg_quiz_score"] == avg(scores)
    quiz_report = get(client, f"v1/reports/quizzes/{quiz}")
    assert quiz_report["pass_rate"] == 0.0
    assert quiz_report["avg_attempts_to_pass"] is None  # nobody passed: no figure to give
    assert quiz_report["median_score"] == 3.0
    assert quiz_report["avg_duration_seconds"] == 200.0


def test_duplicates_sent_twice_through_the_ingest_count_once(
    client: httpx.Client, host: DevHost
) -> None:
    student = new()
    post = f.forum_activity(user_id=student, created_at=at(minutes=30))
    attempt = f.quiz_attempt(student_id=student, score=6.0, submitted_at=at(minutes=20))
    for _ in range(2):
        response = client.post("v1/events", json={"events": [post, attempt]})
        assert response.status_code == 202, response.text
    host.wait_idle(timeout=60)
    report = get(client, f"v1/reports/students/{student}")
    assert (report["forum_posts"], report["quiz_attempts"], report["avg_quiz_score"]) == (1, 1, 6.0)
    assert [item["event_id"] for item in report["recent_activity"]] == [
        attempt["event_id"],
        post["event_id"],
    ]


# --- lesson report and cohorts -------------------------------------------------------------


def lesson_expectations(events: list[dict[str, Any]], since: datetime) -> dict[str, Any]:
    """The lesson report's figures, folded in Python from the raw events."""
    merged: dict[str, dict[str, Any]] = {}
    for raw in events:
        state = merged.setdefault(raw["student_id"], {"sections": set()})
        state["progress"] = max(state.get("progress", 0.0), raw["progress_percent"])
        state["watch"] = max(state.get("watch", 0), raw["video_watch_time"])
        state["sections"] |= set(raw["sections_read"])
        if raw["completed_at"] is not None:
            state["completed"] = True
    best: dict[Any, dict[str, float]] = defaultdict(dict)
    for raw in events:
        moment = parse(raw["last_accessed_at"])
        if moment >= since:
            day = moment.date().isoformat()
            best[day][raw["student_id"]] = max(
                best[day].get(raw["student_id"], 0.0), raw["progress_percent"]
            )
    readers: dict[str, int] = defaultdict(int)
    for state in merged.values():
        for section in state["sections"]:
            readers[section] += 1
    completed = sum(1 for state in merged.values() if state.get("completed"))
    return {
        "students_started": len(merged),
        "students_completed": completed,
        "completion_rate": round(completed / len(merged), 4) if merged else None,
        "avg_progress_percent": avg([s["progress"] for s in merged.values()]),
        "avg_video_watch_time": avg([s["watch"] for s in merged.values()]),
        "section_readers": dict(sorted(readers.items())),
        "progress_over_time": [
            {
                "day": day,
                "active_students": len(students),
                "avg_progress_percent": avg(list(students.values())),
            }
            for day, students in sorted(best.items())
        ],
    }


def test_lesson_report(client: httpx.Client, postgres: PostgresRepository) -> None:
    lesson = new()
    a, b, c = new(), new(), new()

    def step(student: str, started: float, hours_ago: float, progress: float, **over: Any) -> Any:
        return f.lesson_progress(
            student_id=student, lesson_id=lesson, started_at=at(hours=started),
            last_accessed_at=at(hours=hours_ago), progress_percent=progress, **over,
        )  # fmt: skip

    events = [
        step(a, 80, 79, 10.0, video_watch_time=60, sections_read=["intro"]),
        step(a, 80, 50, 100.0, video_watch_time=900, sections_read=["intro", "practice"],
             completed_at=at(hours=50)),
        # Out of order: b's later state first.
        step(b, 30, 2, 60.0, video_watch_time=400, sections_read=["intro", "summary"]),
        step(b, 30, 28, 30.0, video_watch_time=100, sections_read=["intro"]),
        step(b, 30, 27, 35.0, video_watch_time=150, sections_read=["intro"]),
        # Long ago: outside the default 30-day window of progress_over_time.
        step(c, 24 * 45, 24 * 44, 5.0, video_watch_time=0, sections_read=[]),
    ]  # fmt: skip
    store(postgres, events[:3])
    store(postgres, events[2:])  # a redelivery of one event among new ones
    today = datetime.combine(NOW.date(), datetime.min.time(), UTC)

    report = get(client, f"v1/reports/lessons/{lesson}")
    assert report == {"lesson_id": lesson} | lesson_expectations(events, today - timedelta(days=29))
    longer = get(client, f"v1/reports/lessons/{lesson}?days=60")
    assert (
        longer["progress_over_time"]
        == lesson_expectations(events, today - timedelta(days=59))["progress_over_time"]
    )
    assert len(longer["progress_over_time"]) == len(report["progress_over_time"]) + 1


def test_a_lesson_without_data(client: httpx.Client) -> None:
    lesson = new()
    assert get(client, f"v1/reports/lessons/{lesson}") == {
        "lesson_id": lesson,
        "students_started": 0,
        "students_completed": 0,
        "completion_rate": None,
        "avg_progress_percent": None,
        "avg_video_watch_time": None,
        "section_readers": {},
        "progress_over_time": [],
    }
    assert get(client, f"v1/reports/cohorts/lessons/{lesson}") == {
        "lesson_id": lesson,
        "cohorts": [],
    }


def test_cohorts_by_iso_week_of_start(client: httpx.Client, postgres: PostgresRepository) -> None:
    lesson = new()
    # (days before now the student started, days it took to complete or None)
    students = [(70, 3), (70, 10), (69, 27), (69, None), (40, 13), (40, 29), (5, 1)]
    events = []
    for started_days, took in students:
        started = NOW - timedelta(days=started_days)
        completed = None if took is None else started + timedelta(days=took)
        events.append(
            f.lesson_progress(
                lesson_id=lesson,
                started_at=f.iso(started),
                completed_at=None if completed is None else f.iso(completed),
                progress_percent=100.0 if completed else 50.0,
                last_accessed_at=f.iso(completed or started + timedelta(hours=1)),
            )
        )
    store(postgres, events)

    weeks: dict[Any, list[int | None]] = defaultdict(list)
    for started_days, took in students:
        start_day = (NOW - timedelta(days=started_days)).date()
        weeks[start_day - timedelta(days=start_day.weekday())].append(took)
    expected = []
    for monday, took in sorted(weeks.items()):
        year, week, _ = monday.isocalendar()
        share = [
            round(sum(1 for t in took if t is not None and t <= limit) / len(took), 4)
            for limit in (7, 14, 28)
        ]
        expected.append(
            {
                "week": f"{year}-W{week:02d}",
                "week_start": monday.isoformat(),
                "students": len(took),
                "completed_within_1_week": share[0],
                "completed_within_2_weeks": share[1],
                "completed_within_4_weeks": share[2],
            }
        )
    assert get(client, f"v1/reports/cohorts/lessons/{lesson}") == {
        "lesson_id": lesson,
        "cohorts": expected,
    }


# --- quiz report --------------------------------------------------------------------------


def test_quiz_report(client: httpx.Client, postgres: PostgresRepository) -> None:
    quiz = new()
    a, b, c = new(), new(), new()
    # (student, attempt_number, score, passed, duration, answers)
    plan = [
        (a, 1, 2.0, False, 300, {"q1": "b", "q2": [1, 2]}),
        (a, 2, 6.0, True, 200, {"q1": "a", "q2": [1, 2]}),
        (a, 3, 9.0, True, 100, {"q1": "a", "q2": {"b": 1, "a": [True, None]}}),
        (b, 1, 7.0, True, 400, {"q1": "a", "q3": 1}),
        (c, 1, 1.0, False, 500, {"q1": "c", "q3": "1"}),
        (c, 2, 3.0, False, 250, {"q1": "b"}),
    ]
    raws = [
        f.quiz_attempt(
            quiz_id=quiz, student_id=student, attempt_number=number, score=score,
            is_passed=passed, duration_seconds=duration, answers=answers,
        )
        for student, number, score, passed, duration, answers in plan
    ]  # fmt: skip
    store(postgres, raws)
    store(postgres, [raws[0] | {"event_id": new()}, raws[1]])  # a resend and a redelivery

    scores = [row[2] for row in plan]
    first_pass: dict[str, int] = {}
    for student, number, _, passed, _, _ in plan:
        if passed:
            first_pass[student] = min(first_pass.get(student, number), number)
    distribution: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for *_, answers in plan:
        for question, answer in answers.items():
            key = (
                answer
                if isinstance(answer, str)
                else json.dumps(answer, sort_keys=True, separators=(",", ":"))
            )
            distribution[question][key] += 1
    assert get(client, f"v1/reports/quizzes/{quiz}") == {
        "quiz_id": quiz,
        "attempts": 6,
        "students": 3,
        "avg_score": avg(scores),
        "median_score": statistics.median(scores),
        "pass_rate": round(3 / 6, 4),
        "avg_attempts_to_pass": avg(list(first_pass.values())),
        "avg_duration_seconds": avg([row[4] for row in plan]),
        # The string "1" and the number 1 print the same key: their counts add up.
        "answer_distribution": {
            question: dict(sorted(answers.items()))
            for question, answers in sorted(distribution.items())
        },
    }


def test_answer_counts_follow_deleted_attempts(
    client: httpx.Client, postgres: PostgresRepository, test_run: TestRun
) -> None:
    """Erasure and retention delete attempts; the kept answer counts follow."""
    quiz = new()
    kept, erased = new(), new()
    store(
        postgres,
        [
            f.quiz_attempt(quiz_id=quiz, student_id=kept, answers={"q1": "a", "q2": [1]}),
            f.quiz_attempt(quiz_id=quiz, student_id=erased, answers={"q1": "a"}),
            f.quiz_attempt(quiz_id=quiz, student_id=erased, answers={"q1": "b", "q3": "x"}),
        ],
    )
    before = get(client, f"v1/reports/quizzes/{quiz}")["answer_distribution"]
    assert before == {"q1": {"a": 2, "b": 1}, "q2": {"[1]": 1}, "q3": {"x": 1}}
    deleted = rows(
        test_run.postgres_dsn,
        "DELETE FROM quiz_attempts WHERE student_id = %s RETURNING attempt_id",
        erased,
    )
    assert len(deleted) == 2
    after = get(client, f"v1/reports/quizzes/{quiz}")
    assert after["answer_distribution"] == {"q1": {"a": 1}, "q2": {"[1]": 1}}
    assert rows(
        test_run.postgres_dsn, "SELECT count(*) FROM quiz_answer_counts WHERE quiz_id = %s", quiz
    ) == [(2,)]
    assert (after["attempts"], after["students"], after["median_score"]) == (1, 1, 7.5)
    assert (after["pass_rate"], after["avg_attempts_to_pass"]) == (1.0, 1.0)


def test_quiz_figures_follow_a_deleted_first_pass(
    client: httpx.Client, postgres: PostgresRepository, test_run: TestRun
) -> None:
    """Retention may delete a student's first passing attempt but keep later ones."""
    quiz, student = new(), new()
    attempts = [
        f.quiz_attempt(
            quiz_id=quiz, student_id=student, attempt_number=n, score=score, is_passed=passed,
            duration_seconds=60 * n,
        )
        for n, score, passed in ((1, 2.0, False), (2, 6.0, True), (3, 8.0, True))
    ]  # fmt: skip
    store(postgres, attempts)
    assert get(client, f"v1/reports/quizzes/{quiz}")["avg_attempts_to_pass"] == 2.0
    rows(
        test_run.postgres_dsn,
        "DELETE FROM quiz_attempts WHERE attempt_id = %s RETURNING attempt_id",
        attempts[1]["attempt_id"],
    )
    report = get(client, f"v1/reports/quizzes/{quiz}")
    assert report | {"answer_distribution": None} == {
        "quiz_id": quiz,
        "attempts": 2,
        "students": 1,
        "avg_score": 5.0,
        "median_score": 5.0,
        "pass_rate": 0.5,
        "avg_attempts_to_pass": 3.0,
        "avg_duration_seconds": 120.0,
        "answer_distribution": None,
    }


def test_a_quiz_without_attempts(client: httpx.Client) -> None:
    quiz = new()
    assert get(client, f"v1/reports/quizzes/{quiz}") == {
        "quiz_id": quiz,
        "attempts": 0,
        "students": 0,
        "avg_score": None,
        "median_score": None,
        "pass_rate": None,
        "avg_attempts_to_pass": None,
        "avg_duration_seconds": None,
        "answer_distribution": {},
    }


# --- teacher report --------------------------------------------------------------------


def test_teacher_report(client: httpx.Client, postgres: PostgresRepository) -> None:
    teacher = new()
    session_a, session_b, poll_1, poll_2 = new(), new(), new(), new()
    content = [
        f.content_activity(teacher_id=teacher, content_type="lesson"),
        f.content_activity(teacher_id=teacher, content_type="lesson"),
        f.content_activity(teacher_id=teacher, content_type="quiz"),
        f.content_activity(
            teacher_id=teacher, content_type="lesson", action="updated", changes_summary="typo"
        ),
        f.content_activity(
            teacher_id=teacher, content_type="assignment", action="updated", changes_summary="due"
        ),
    ]
    feedback = [
        f.feedback(teacher_id=teacher, feedback_type="text", score=8.0),
        f.feedback(teacher_id=teacher, feedback_type="rubric", score=6.5),
        f.feedback(teacher_id=teacher, feedback_type="audio", score=None),
    ]
    live = [
        f.live_class_engagement(
            teacher_id=teacher, session_id=session_a, joined_at=at(hours=3), left_at=None,
            duration_seconds=600, polls_launched=[poll_1], messages_sent=3,
        ),
        f.live_class_engagement(
            teacher_id=teacher, session_id=session_a, joined_at=at(hours=3),
            left_at=at(hours=2), duration_seconds=1200, polls_launched=[poll_1, poll_2],
            messages_sent=5,
        ),
        f.live_class_engagement(
            teacher_id=teacher, session_id=session_b, joined_at=at(hours=1), left_at=None,
            duration_seconds=300, polls_launched=[], messages_sent=1,
        ),
    ]  # fmt: skip
    # Snapshots out of order, and one delivered twice.
    store(postgres, content + feedback + [live[1], live[0]])
    store(postgres, [live[2], live[1], feedback[0]])

    assert get(client, f"v1/reports/teachers/{teacher}") == {
        "teacher_id": teacher,
        "content_created": {"lesson": 2, "quiz": 1, "assignment": 0},
        "content_updated": {"lesson": 1, "quiz": 0, "assignment": 1},
        "feedback_given": {"text": 1, "rubric": 1, "audio": 1},
        "avg_feedback_score": avg([8.0, 6.5]),
        "live_sessions": 2,
        "live_seconds": 1200 + 300,
        "polls_launched": 2,
        "messages_sent": 5 + 1,
    }
    nobody = new()
    assert get(client, f"v1/reports/teachers/{nobody}") == {
        "teacher_id": nobody,
        "content_created": {"lesson": 0, "quiz": 0, "assignment": 0},
        "content_updated": {"lesson": 0, "quiz": 0, "assignment": 0},
        "feedback_given": {"text": 0, "rubric": 0, "audio": 0},
        "avg_feedback_score": None,
        "live_sessions": 0,
        "live_seconds": 0,
        "polls_launched": 0,
        "messages_sent": 0,
    }


# --- forum ---------------------------------------------------------------------------------


def test_forum_trending_counts_actions_in_the_window(
    client: httpx.Client, postgres: PostgresRepository
) -> None:
    busy, quiet = new(), new()
    post = new()
    events = [
        f.forum_activity(thread_id=busy, post_id=post, created_at=at(minutes=50)),
        *[
            f.forum_activity(
                thread_id=busy, action_type="reply", parent_post_id=post, content="+1",
                created_at=at(minutes=40 - n),
            )
            for n in range(30)
        ],
        *[
            f.forum_activity(
                thread_id=busy, post_id=post, action_type="like", content=None,
                created_at=at(minutes=30 - n),
            )
            for n in range(25)
        ],
        f.forum_activity(thread_id=quiet, post_id=post, created_at=at(minutes=20)),
        *[
            f.forum_activity(
                thread_id=quiet, post_id=post, action_type="like", content=None,
                created_at=at(minutes=10 - n),
            )
            for n in range(4)
        ],
        # Outside a one-hour window.
        f.forum_activity(thread_id=quiet, action_type="reply", parent_post_id=post,
                         content="late", created_at=at(hours=3)),
    ]  # fmt: skip
    store(postgres, events)
    store(postgres, events[:5])  # redelivered

    body = get(client, "v1/reports/forum/trending?hours=1&limit=100")
    assert body["hours"] == 1
    mine = {row["thread_id"]: row for row in body["threads"] if row["thread_id"] in {busy, quiet}}
    assert mine == {
        busy: {"thread_id": busy, "actions": 56, "posts": 1, "replies": 30, "likes": 25},
        quiet: {"thread_id": quiet, "actions": 5, "posts": 1, "replies": 0, "likes": 4},
    }
    ranked = [row["actions"] for row in body["threads"]]
    assert ranked == sorted(ranked, reverse=True)
    wider = get(client, "v1/reports/forum/trending?hours=4&limit=100")
    assert {row["thread_id"]: row["actions"] for row in wider["threads"]}[quiet] == 6


def test_forum_contributors(client: httpx.Client, postgres: PostgresRepository) -> None:
    author, helper, fan = new(), new(), new()
    thread, first, second, answer, old_post = new(), new(), new(), new(), new()
    events = [
        f.forum_activity(user_id=author, post_id=first, thread_id=thread, created_at=at(hours=5)),
        f.forum_activity(user_id=author, post_id=second, thread_id=thread, created_at=at(hours=4)),
        f.forum_activity(
            user_id=author, post_id=answer, thread_id=thread, action_type="reply",
            parent_post_id=first, content="Solved it", created_at=at(hours=3),
        ),
        *[
            f.forum_activity(
                user_id=who, thread_id=thread, action_type="reply", parent_post_id=first,
                content="Try this", created_at=at(hours=2, minutes=n),
            )
            for n, who in enumerate([helper] * 4 + [author] * 2)
        ],
        # Ten days ago: outside the 7-day window, but its like (now) counts.
        f.forum_activity(
            user_id=author, post_id=old_post, thread_id=thread, created_at=at(days=10)
        ),
    ]  # fmt: skip

    def like(user: str, target: str, **when: float) -> dict[str, Any]:
        return f.forum_activity(
            user_id=user, post_id=target, thread_id=thread, action_type="like", content=None,
            created_at=at(**when),
        )  # fmt: skip

    likes = [
        like(fan, first, hours=1),
        like(helper, answer, minutes=30),
        like(fan, old_post, minutes=20),
        like(author, first, minutes=10),  # one's own post: not received
        like(fan, second, days=9),  # outside the window
    ]
    store(postgres, events + likes)
    store(postgres, likes[:1])  # redelivered

    body = get(client, "v1/reports/forum/contributors?days=7&limit=100")
    assert body["days"] == 7
    mine = {
        row["user_id"]: row for row in body["contributors"] if row["user_id"] in {author, helper}
    }
    assert mine == {
        author: {
            "user_id": author, "contributions": 5, "posts": 2, "replies": 3, "likes_received": 3
        },
        helper: {
            "user_id": helper, "contributions": 4, "posts": 0, "replies": 4, "likes_received": 0
        },
    }  # fmt: skip
    assert fan not in {row["user_id"] for row in body["contributors"]}


# --- activity over time ---------------------------------------------------------------------


def test_activity_report_from_rollups(client: httpx.Client, postgres: PostgresRepository) -> None:
    # A day in 2001 that no other test writes roll-ups for.
    base = datetime(2001, 3, 4, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 3000)
    counts = [
        (base + timedelta(minutes=1), "quiz_attempt", 3),
        (base + timedelta(minutes=1), "feedback", 1),
        (base + timedelta(minutes=2), "quiz_attempt", 2),
        (base + timedelta(hours=1, minutes=5), "forum_activity", 7),
        (base + timedelta(hours=5), "forum_activity", 4),  # outside [from, to)
    ]
    rows = [RollupRow(moment, 60, "events", kind, value) for moment, kind, value in counts]
    rows.append(RollupRow(base + timedelta(minutes=1), 60, "quiz_attempts", new(), 99))
    assert postgres.commit_rollup(f"test-activity-{new()}", rows)

    start, end = f.iso(base), f.iso(base + timedelta(hours=2))
    body = get(client, f"v1/reports/activity?from={start}&to={end}&bucket=hour")
    assert body == {
        "from": start,
        "to": end,
        "bucket": "hour",
        "buckets": [
            {
                "bucket_start": f.iso(base),
                "counts": {"feedback": 1, "quiz_attempt": 5},
                "total": 6,
            },
            {
                "bucket_start": f.iso(base + timedelta(hours=1)),
                "counts": {"forum_activity": 7},
                "total": 7,
            },
        ],
        "totals": {"feedback": 1, "forum_activity": 7, "quiz_attempt": 5},
    }
    # A later roll-up adding to a bucket already stored (the upsert's update path).
    more = [RollupRow(base + timedelta(minutes=2), 60, "events", "quiz_attempt", 4)]
    assert postgres.commit_rollup(f"test-activity-{new()}", more)
    again = get(client, f"v1/reports/activity?from={start}&to={end}&bucket=hour")
    assert again["totals"] == {"feedback": 1, "forum_activity": 7, "quiz_attempt": 9}
    body["totals"]["quiz_attempt"] = 9
    body["buckets"][0] = {
        "bucket_start": f.iso(base),
        "counts": {"feedback": 1, "quiz_attempt": 9},
        "total": 10,
    }
    minutes = get(client, f"v1/reports/activity?from={start}&to={end}&bucket=minute")
    assert [(b["bucket_start"], b["total"]) for b in minutes["buckets"]] == [
        (f.iso(base + timedelta(minutes=1)), 4),
        (f.iso(base + timedelta(minutes=2)), 6),
        (f.iso(base + timedelta(hours=1, minutes=5)), 7),
    ]
    day_end = f.iso(base + timedelta(days=1))
    days = get(client, f"v1/reports/activity?from={start}&to={day_end}&bucket=day")
    assert days["buckets"] == [
        {
            "bucket_start": f.iso(base),
            "counts": {"feedback": 1, "forum_activity": 11, "quiz_attempt": 9},
            "total": 21,
        }
    ]
    # An offset in the query means the same instant.
    shifted = (base + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2)))
    same = client.get(
        "v1/reports/activity", params={"from": start, "to": shifted.isoformat(), "bucket": "hour"}
    )
    assert same.status_code == 200
    assert same.json()["totals"] == body["totals"]


# --- recommendations -------------------------------------------------------------------------


def test_recommendations(client: httpx.Client, postgres: PostgresRepository) -> None:
    student = new()
    open_recent, open_older, done, next_popular, next_rare = (new() for _ in range(5))
    failing, passed = new(), new()
    peers = [new() for _ in range(3)]

    def progress(who: str, lesson: str, started: float, completed: float | None) -> Any:
        return f.lesson_progress(
            student_id=who, lesson_id=lesson, started_at=at(hours=started),
            completed_at=None if completed is None else at(hours=completed),
            progress_percent=100.0 if completed is not None else 45.0,
            last_accessed_at=at(hours=completed if completed is not None else started - 1),
        )  # fmt: skip

    events = [
        progress(student, open_recent, 3, None),  # accessed 2 hours ago
        progress(student, open_older, 6, None),  # accessed 5 hours ago
        progress(student, done, 50, 40),
        # Peers who completed `done` and what each started next.
        progress(peers[0], done, 100, 90),
        progress(peers[0], next_popular, 80, None),
        progress(peers[0], next_rare, 70, None),  # second after: not "next"
        progress(peers[1], done, 100, 95),
        progress(peers[1], next_popular, 60, None),
        progress(peers[2], done, 100, 90),
        progress(peers[2], next_rare, 85, None),
        progress(peers[2], open_recent, 84, None),  # already started by the student
        f.quiz_attempt(student_id=student, quiz_id=failing, attempt_number=1, score=2.0,
                       is_passed=False),
        f.quiz_attempt(student_id=student, quiz_id=failing, attempt_number=2, score=5.0,
                       is_passed=False),
        f.quiz_attempt(student_id=student, quiz_id=passed, attempt_number=1, score=1.0,
                       is_passed=False),
        f.quiz_attempt(student_id=student, quiz_id=passed, attempt_number=2, score=9.0,
                       is_passed=True),
    ]  # fmt: skip
    store(postgres, events)

    body = get(client, f"v1/students/{student}/recommendations")
    items = [(item["kind"], item["id"], item["score"]) for item in body["items"]]
    assert items == [
        ("resume_lesson", open_recent, 1.0),
        ("retry_quiz", failing, 0.9),
        ("resume_lesson", open_older, 0.8),
        ("next_lesson", next_popular, round(0.8 * 2 / 3, 4)),
        ("next_lesson", next_rare, round(0.8 * 1 / 3, 4)),
    ]
    reasons = [item["reason"] for item in body["items"]]
    assert reasons[0].startswith("You are 45% through this lesson")
    assert reasons[1] == "Not passed yet after 2 attempts; your best score is 5."
    assert (
        reasons[3]
        == "2 of 3 students who completed lessons you completed started this lesson next."
    )
    assert get(client, f"v1/students/{student}/recommendations") == body  # deterministic
    assert (
        get(client, f"v1/students/{student}/recommendations?limit=2")["items"] == body["items"][:2]
    )
    nobody = new()
    assert get(client, f"v1/students/{nobody}/recommendations") == {
        "student_id": nobody,
        "items": [],
    }


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("v1/reports/students/not-a-uuid", "student_id must be a UUID"),
        ("v1/reports/lessons/123", "lesson_id must be a UUID"),
        (f"v1/reports/lessons/{uuid.uuid4()}?days=0", "days must be from 1 to 366"),
        ("v1/reports/quizzes/x", "quiz_id must be a UUID"),
        ("v1/reports/teachers/x", "teacher_id must be a UUID"),
        ("v1/reports/forum/trending?hours=0", "hours must be from 1 to 744"),
        ("v1/reports/forum/trending?hours=abc", "hours must be an integer"),
        ("v1/reports/forum/trending?limit=101", "limit must be from 1 to 100"),
        ("v1/reports/forum/contributors?days=93", "days must be from 1 to 92"),
        ("v1/reports/forum/contributors?limit=0", "limit must be from 1 to 100"),
        ("v1/reports/activity?bucket=week", "bucket must be one of minute, hour, day"),
        ("v1/reports/activity?from=2026-01-01T00:00:00", "from must carry a time zone"),
        ("v1/reports/activity?to=yesterday", "to must be an ISO 8601 timestamp"),
        (
            "v1/reports/activity?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from must be before to",
        ),
        (
            "v1/reports/activity?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&bucket=minute",
            "to - from must be at most 1 days for bucket=minute",
        ),
        ("v1/reports/cohorts/lessons/nope", "lesson_id must be a UUID"),
        ("v1/students/nope/recommendations", "student_id must be a UUID"),
        (f"v1/students/{uuid.uuid4()}/recommendations?limit=51", "limit must be from 1 to 50"),
    ],
)
def test_bad_parameters_are_400s_naming_the_rule(
    client: httpx.Client, path: str, names: str
) -> None:
    response = client.get(path)
    assert response.status_code == 400, response.text
    assert names in response.json()["error"]


def test_activity_report_defaults_to_the_last_24_hours(client: httpx.Client) -> None:
    body = get(client, "v1/reports/activity")
    span = parse(body["to"]) - parse(body["from"])
    # 24 hours back from now, widened to whole hours.
    assert body["bucket"] == "hour"
    assert timedelta(hours=24) <= span <= timedelta(hours=25)
    assert parse(body["from"]).minute == parse(body["to"]).minute == 0
