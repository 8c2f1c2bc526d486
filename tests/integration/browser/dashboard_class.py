"""A small class for the dashboard tests, seeded through the API: a teacher who
created a lesson, a quiz and an assignment, five students with progress, quiz
attempts, forum posts, replies and likes, feedback, a live session with two
teachers, and a few minutes of roll-ups for the activity page.

Also the few helpers the dashboard tests share: how the pages format numbers
(so a test compares what a person reads with the API's JSON), and how a test
signs a browser in or hands it a key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.sync_api import BrowserContext

from devhost import DevHost
from shared.models.rollups import RollupRow
from shared.repositories.postgres import PostgresRepository
from tests import factories as f

SECTIONS = ("introduction", "equivalent-fractions", "adding-fractions", "practice", "summary")
LESSON_TITLE = "Adding fractions"
QUIZ_TITLE = "Fractions check"
KEY_STORE = "dashboard.functionKey"  # the sessionStorage item app.js keeps the key in
# (progress %, sections read, completed, started days ago, last opened hours ago) per student
PROGRESS = (
    (100.0, 5, True, 20, 12 * 24),
    (80.0, 4, False, 14, 2 * 24),
    (60.0, 3, False, 9, 24),
    (40.0, 2, False, 3, 3),
    (20.0, 1, False, 1, 0.2),
)
# (score, passed) per attempt, per student
ATTEMPTS = (
    ((9.0, True),),
    ((4.0, False), (7.0, True)),
    ((5.0, False),),
    ((8.0, True),),
    ((3.0, False),),
)
ANSWERS = (
    {"q1": "b", "q2": ["a", "c"], "q3": "5/6"},
    {"q1": "a", "q2": ["a"], "q3": "2/5"},
    {"q1": "b", "q2": ["a", "c"], "q3": "5/6"},
    {"q1": "c", "q2": ["a", "c"], "q3": "5/6"},
    {"q1": "b", "q2": ["c"], "q3": "1/2"},
)


@dataclass(frozen=True)
class SeededClass:
    teacher: str
    co_teacher: str
    lesson: str
    quiz: str
    assignment: str
    session: str
    class_id: str
    students: tuple[str, ...]
    posts: dict[str, str] = field(default_factory=dict)  # student -> their first post
    threads: tuple[str, ...] = ()
    rollup_minutes: tuple[datetime, ...] = ()  # minute buckets seeded in activity_rollups


def ago(**delta: float) -> str:
    return f.ago(**delta)


def seed_class(client: httpx.Client, host: DevHost, postgres: PostgresRepository) -> SeededClass:
    teacher, co_teacher = f.new_id(), f.new_id()
    lesson, quiz, assignment = f.new_id(), f.new_id(), f.new_id()
    session, class_id = f.new_id(), f.new_id()
    students = tuple(f.new_id() for _ in PROGRESS)
    events: list[dict[str, Any]] = [
        f.content_activity(
            teacher_id=teacher,
            content_id=lesson,
            content_type="lesson",
            title=LESSON_TITLE,
            timestamp=ago(days=30),
        ),
        f.content_activity(
            teacher_id=teacher,
            content_id=quiz,
            content_type="quiz",
            title=QUIZ_TITLE,
            timestamp=ago(days=29),
        ),
        f.content_activity(
            teacher_id=teacher,
            content_id=assignment,
            content_type="assignment",
            title="Worksheet 3",
            timestamp=ago(days=28),
        ),
        f.content_activity(
            teacher_id=teacher,
            content_id=lesson,
            content_type="lesson",
            action="updated",
            title=LESSON_TITLE,
            changes_summary="Added a worked example",
            timestamp=ago(days=21),
        ),
    ]
    for student, (percent, read, done, started, last) in zip(students, PROGRESS, strict=True):
        # An earlier step, so the lesson has several days of progress over time.
        events.append(
            f.lesson_progress(
                student_id=student,
                lesson_id=lesson,
                started_at=ago(days=started),
                progress_percent=percent / 2,
                video_watch_time=60 * read,
                sections_read=list(SECTIONS[: max(1, read // 2)]),
                last_accessed_at=ago(days=started, minutes=-30),
            )
        )
        events.append(
            f.lesson_progress(
                student_id=student,
                lesson_id=lesson,
                started_at=ago(days=started),
                completed_at=ago(hours=last) if done else None,
                progress_percent=percent,
                video_watch_time=120 * read,
                sections_read=list(SECTIONS[:read]),
                last_accessed_at=ago(hours=last),
            )
        )
    # The first student is also halfway through another lesson (something to resume).
    events.append(
        f.lesson_progress(
            student_id=students[0],
            progress_percent=35.0,
            sections_read=["introduction"],
            started_at=ago(days=2),
            last_accessed_at=ago(hours=20),
        )
    )
    for index, (student, attempts) in enumerate(zip(students, ATTEMPTS, strict=True)):
        for number, (score, passed) in enumerate(attempts, start=1):
            events.append(
                f.quiz_attempt(
                    student_id=student,
                    quiz_id=quiz,
                    attempt_number=number,
                    answers=ANSWERS[(index + number - 1) % len(ANSWERS)],
                    score=score,
                    is_passed=passed,
                    submitted_at=ago(days=5 - index, minutes=-number * 20),
                    duration_seconds=300 + 60 * index,
                )
            )
    threads = (f.new_id(), f.new_id())
    posts = {students[0]: f.new_id(), students[3]: f.new_id()}
    events += [
        f.forum_activity(
            user_id=students[0],
            post_id=posts[students[0]],
            thread_id=threads[0],
            content="Why do we need a common denominator?",
            created_at=ago(hours=3),
        ),
        f.forum_activity(
            user_id=students[1],
            post_id=f.new_id(),
            thread_id=threads[0],
            action_type="reply",
            parent_post_id=posts[students[0]],
            content="So the pieces are the same size.",
            created_at=ago(hours=2),
        ),
        f.forum_activity(
            user_id=students[2],
            post_id=posts[students[0]],
            thread_id=threads[0],
            action_type="like",
            content=None,
            created_at=ago(hours=1),
        ),
        f.forum_activity(
            user_id=teacher,
            post_id=f.new_id(),
            thread_id=threads[0],
            action_type="reply",
            parent_post_id=posts[students[0]],
            content="Exactly: see the worked example.",
            created_at=ago(minutes=50),
        ),
        f.forum_activity(
            user_id=students[3],
            post_id=posts[students[3]],
            thread_id=threads[1],
            content="Is 2/4 the same as 1/2?",
            created_at=ago(minutes=40),
        ),
        f.forum_activity(
            user_id=students[4],
            post_id=posts[students[3]],
            thread_id=threads[1],
            action_type="like",
            content=None,
            created_at=ago(minutes=30),
        ),
    ]
    for student, kind, score in zip(
        students[:3], ("text", "rubric", "audio"), (9.0, 7.0, None), strict=True
    ):
        events.append(
            f.feedback(
                teacher_id=teacher,
                student_id=student,
                feedback_type=kind,
                score=score,
                created_at=ago(hours=6),
            )
        )
    events += [
        f.live_class_engagement(
            teacher_id=teacher,
            class_id=class_id,
            session_id=session,
            joined_at=ago(minutes=30),
            left_at=None,
            duration_seconds=1800,
            polls_launched=[f.new_id(), f.new_id()],
            messages_sent=14,
        ),
        f.live_class_engagement(
            teacher_id=co_teacher,
            class_id=class_id,
            session_id=session,
            joined_at=ago(minutes=40),
            left_at=ago(minutes=10),
            duration_seconds=1800,
            polls_launched=[f.new_id()],
            messages_sent=3,
        ),
    ]
    response = client.post("v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events), response.text

    # The activity page reads roll-ups, which the timer writes a minute after the events:
    # seed a few closed minutes in the past (what the timer would have written).
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = tuple(now - timedelta(minutes=m) for m in (50, 35, 20))
    rows = [
        RollupRow(minute, 60, "events", kind, count)
        for minute, counts in zip(
            minutes,
            (
                {"lesson_progress": 12, "quiz_attempt": 4, "forum_activity": 3},
                {"lesson_progress": 7, "feedback": 2},
                {"quiz_attempt": 6, "live_class_engagement": 1, "content_activity": 1},
            ),
            strict=True,
        )
        for kind, count in counts.items()
    ]
    assert postgres.commit_rollup(f"dashboard-test-{uuid.uuid4()}", rows)
    host.wait_idle(timeout=60)
    return SeededClass(
        teacher=teacher,
        co_teacher=co_teacher,
        lesson=lesson,
        quiz=quiz,
        assignment=assignment,
        session=session,
        class_id=class_id,
        students=students,
        posts=posts,
        threads=threads,
        rollup_minutes=minutes,
    )


# --- what a person reads ------------------------------------------------------------------


def num(value: float | None) -> str:
    """A number as the pages show it (app.js `num`): up to 2 decimals, thousands separated."""
    if value is None:
        return "—"
    rounded = round(float(value), 2)
    text = f"{rounded:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def pct(value: float | None) -> str:
    return "—" if value is None else f"{num(value)}%"


def share(value: float | None) -> str:
    return "—" if value is None else f"{num(round(value * 10000) / 100)}%"


def short(uuid_text: str) -> str:
    return uuid_text[:8]


# --- credentials in the browser -------------------------------------------------------------


def give_key(context: BrowserContext, key: str) -> None:
    """Every page of the context starts with `key` in sessionStorage, as if typed in the form."""
    context.add_init_script(f"sessionStorage.setItem({KEY_STORE!r}, {key!r});")


def sign_in(context: BrowserContext, host: DevHost, user_id: str, *roles: str) -> None:
    """Sign the browser in on the local host's /.auth/login/dev (its cookie goes to the context)."""
    fields = [("user_id", user_id), ("name", f"{' and '.join(roles)} {user_id[:4]}")]
    fields += [("roles", role) for role in roles]
    response = context.request.post(
        host.base_url + "/.auth/login/dev",
        data=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert response.status == 303, response.text()
