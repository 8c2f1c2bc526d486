"""A person's overview (the dashboard's index): what a teacher and a student can open."""

from __future__ import annotations

import httpx

from devhost import DevHost
from tests import factories as f


def test_a_teachers_and_a_students_overview(host: DevHost, client: httpx.Client) -> None:
    teacher, student, other_teacher = f.new_id(), f.new_id(), f.new_id()
    lesson, quiz, session = f.new_id(), f.new_id(), f.new_id()
    events = [
        f.content_activity(
            teacher_id=teacher, content_id=lesson, title="Fractions", timestamp=f.ago(days=3)
        ),
        f.content_activity(
            teacher_id=teacher,
            content_id=lesson,
            title="Fractions, revised",
            action="updated",
            changes_summary="new examples",
            timestamp=f.ago(days=1),
        ),
        f.content_activity(
            teacher_id=teacher,
            content_id=quiz,
            content_type="quiz",
            title="Fractions quiz",
            timestamp=f.ago(days=2),
        ),
        f.content_activity(teacher_id=other_teacher, title="Someone else's"),
        f.live_class_engagement(teacher_id=teacher, session_id=session),
        f.lesson_progress(student_id=student, lesson_id=lesson, last_accessed_at=f.ago(hours=2)),
        f.quiz_attempt(student_id=student, quiz_id=quiz, score=4.0, is_passed=False),
        f.quiz_attempt(student_id=student, quiz_id=quiz, score=9.0, is_passed=True),
    ]
    assert client.post("v1/events", json={"events": events}).status_code == 202
    host.wait_idle(timeout=60)

    mine = client.get(f"v1/users/{teacher}/overview").json()
    assert [(c["content_id"], c["title"]) for c in mine["content"]] == [
        (lesson, "Fractions, revised"),
        (quiz, "Fractions quiz"),
    ]
    assert [s["session_id"] for s in mine["live_sessions"]] == [session]
    assert [s["student_id"] for s in mine["students"]] == [student]
    assert mine["lessons"] == mine["quizzes"] == []

    theirs = client.get(f"v1/users/{student}/overview").json()
    assert theirs["content"] == theirs["live_sessions"] == theirs["students"] == []
    assert [(item["lesson_id"], item["title"]) for item in theirs["lessons"]] == [
        (lesson, "Fractions, revised")
    ]
    (attempted,) = theirs["quizzes"]
    assert (attempted["quiz_id"], attempted["title"]) == (quiz, "Fractions quiz")
    assert (attempted["best_score"], attempted["attempts"], attempted["passed"]) == (9.0, 2, True)

    nobody = client.get(f"v1/users/{f.new_id()}/overview").json()
    assert all(nobody[section] == [] for section in ("content", "lessons", "quizzes", "students"))
