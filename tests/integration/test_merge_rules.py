"""One merge rule, three implementations: PostgreSQL's persist statement, Redis's
apply script and the Python fold (``merge_rows``, from the ``MergedTable``
specs) must agree on every field whatever the order, the batching and the
duplicates. Property-based: hypothesis draws the events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.models.events import ActivityEvent, event_adapter
from shared.repositories.postgres import PostgresRepository
from shared.repositories.postgres.tables import (
    LESSON_PROGRESS,
    LIVE_CLASS_ENGAGEMENT,
    merge_rows,
)
from shared.repositories.realtime import RealtimeRepository
from shared.services.realtime import (
    lessons_from_hash,
    ranked_from_attempts,
    session_from_hash,
    teachers_from_hash,
)
from tests import factories as f
from tests.conftest import TestRun

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
SECTIONS = ["intro", "basics", "practice", "summary"]


def at(minutes: int) -> str:
    return f.iso(BASE + timedelta(minutes=minutes))


@st.composite
def lesson_events(draw: st.DrawFn, student: str, lessons: list[str]) -> dict[str, Any]:
    start = draw(st.integers(0, 600))
    done = draw(st.booleans())
    return f.lesson_progress(
        student_id=student,
        lesson_id=draw(st.sampled_from(lessons)),
        started_at=at(start),
        completed_at=at(start + draw(st.integers(0, 300))) if done else None,
        progress_percent=float(draw(st.integers(0, 1000))) / 10,
        video_watch_time=draw(st.integers(0, 5000)),
        sections_read=draw(st.lists(st.sampled_from(SECTIONS), unique=True)),
        last_accessed_at=at(start + draw(st.integers(0, 900))),
    )


@st.composite
def live_events(
    draw: st.DrawFn, session: str, teachers: list[str], classes: list[str], polls: list[str]
) -> dict[str, Any]:
    joined = draw(st.integers(0, 600))
    left = draw(st.booleans())
    return f.live_class_engagement(
        session_id=session,
        teacher_id=draw(st.sampled_from(teachers)),
        class_id=draw(st.sampled_from(classes)),
        joined_at=at(joined),
        left_at=at(joined + draw(st.integers(0, 120))) if left else None,
        # Ties on duration happen: then the event id decides, everywhere alike.
        duration_seconds=draw(st.sampled_from([0, 60, 600, 3600])),
        polls_launched=draw(st.lists(st.sampled_from(polls), unique=True)),
        messages_sent=draw(st.integers(0, 50)),
    )


@st.composite
def attempt_events(draw: st.DrawFn, quiz: str, students: list[str]) -> dict[str, Any]:
    return f.quiz_attempt(
        quiz_id=quiz,
        student_id=draw(st.sampled_from(students)),
        score=float(draw(st.integers(0, 20))) / 2,
        submitted_at=at(draw(st.integers(0, 60))),  # equal times and scores tie-break by id
    )


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, Any]:
    """Events of one student in two lessons, a session of two teachers, a quiz of
    three students; some sent twice; in any order; in any batches."""
    student, session, quiz = f.new_id(), f.new_id(), f.new_id()
    lessons = [f.new_id(), f.new_id()]
    teachers, classes = [f.new_id(), f.new_id()], [f.new_id(), f.new_id()]
    polls = [f.new_id() for _ in range(3)]
    takers = [f.new_id() for _ in range(3)]
    events = draw(st.lists(lesson_events(student, lessons), min_size=1, max_size=8))
    events += draw(st.lists(live_events(session, teachers, classes, polls), min_size=1, max_size=8))
    events += draw(st.lists(attempt_events(quiz, takers), min_size=1, max_size=8))
    sent = events + draw(st.lists(st.sampled_from(events), max_size=4))  # redeliveries
    order = draw(st.permutations(sent))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(order) - 1)), max_size=3)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    return {
        "student": student,
        "session": session,
        "quiz": quiz,
        "events": events,
        "batches": [b for b in batches if b],
    }


def validated(raw: list[dict[str, Any]]) -> list[ActivityEvent]:
    return [event_adapter.validate_python(event) for event in raw]


def lesson_state(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        str(row["lesson_id"]),
        row["started_at"],
        row["completed_at"],
        float(row["progress_percent"]),
        int(row["video_watch_time"]),
        sorted(row["sections_read"]),
        row["last_accessed_at"],
    )


def teacher_state(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        str(row["teacher_id"]),
        row["joined_at"],
        row["left_at"],
        int(row["duration_seconds"]),
        sorted(str(p) for p in row["polls_launched"]),
        int(row["messages_sent"]),
        str(row["class_id"]),
    )


@pytest.fixture(scope="module")
def stores(test_run: TestRun) -> Iterator[tuple[PostgresRepository, RealtimeRepository]]:
    with PostgresRepository(test_run.postgres_dsn) as postgres:
        views = RealtimeRepository(test_run.redis_url, f"{test_run.redis_prefix}merge:")
        views.load_tombstones([])
        yield postgres, views
        for key in views.client.scan_iter(match=f"{views.prefix}*", count=1000):
            views.client.delete(key)
        views.close()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scenario())
def test_postgres_redis_and_the_python_fold_merge_alike(
    case: dict[str, Any], stores: tuple[PostgresRepository, RealtimeRepository]
) -> None:
    postgres, views = stores
    received = datetime.now(UTC)
    for batch in case["batches"]:
        events = validated(batch)
        postgres.persist_events(events, received)
        views.apply_events(events, received)
    unique = validated(list({e["event_id"]: e for e in case["events"]}.values()))

    # lesson_progress, every field
    dumped = [e.model_dump() for e in unique if e.event_type == "lesson_progress"]
    folded = sorted(lesson_state(row) for row in merge_rows(LESSON_PROGRESS, dumped).values())
    stored = sorted(
        lesson_state(row)
        for row in postgres.lesson_progress_for_student(uuid.UUID(case["student"]))
    )
    cached = views.progress(case["student"]) or views.client.hgetall(
        views.key("progress", case["student"])
    )
    redis = sorted(lesson_state(state.model_dump()) for state in lessons_from_hash(cached))
    assert stored == folded
    assert redis == folded

    # live_class_engagement, every field, class_id included; and the session's class
    dumped = [e.model_dump() for e in unique if e.event_type == "live_class_engagement"]
    folded_rows = merge_rows(LIVE_CLASS_ENGAGEMENT, dumped).values()
    folded = sorted(teacher_state(row) for row in folded_rows)
    rows = postgres.live_session(uuid.UUID(case["session"]))
    data = views.client.hgetall(views.key("live", case["session"]))
    owners = _owner_fields(data)
    redis = sorted(
        teacher_state(t.model_dump() | {"class_id": owners[str(t.teacher_id)]["class_id"]})
        for t in teachers_from_hash(data)
    )
    assert sorted(teacher_state(row) for row in rows) == folded
    assert redis == folded
    assert session_from_hash(data)[0] == str(rows[0]["class_id"])

    # the leaderboard: ranking, best scores, attempts
    views.load_leaderboard(case["quiz"], [])  # mark it held: every attempt was applied live
    ranked = ranked_from_attempts(postgres.quiz_attempts_for_quiz(uuid.UUID(case["quiz"])), 100)
    board = views.leaderboard(case["quiz"], 100) or []
    assert [(e["student_id"], e["best_score"], e["attempts"]) for e in board] == [
        (e["student_id"], e["best_score"], e["attempts"]) for e in ranked
    ]


def _owner_fields(data: dict[str, str]) -> dict[str, dict[str, str]]:
    grouped: dict[str, dict[str, str]] = {}
    for field, value in data.items():
        if "|" in field:
            owner, name = field.split("|", 1)
            grouped.setdefault(owner, {})[name] = value
    return grouped


def test_the_check_fails_when_one_copy_of_a_rule_changes() -> None:
    """The comparison above would catch a changed rule: a fold with MIN for a MAX differs."""
    from dataclasses import replace
    from types import MappingProxyType

    from shared.repositories.postgres.tables import Merge

    rules = dict(LESSON_PROGRESS.rules) | {"progress_percent": Merge.MIN}
    changed = replace(LESSON_PROGRESS, rules=MappingProxyType(rules))
    student, lesson = f.new_id(), f.new_id()
    rows = [
        e.model_dump()
        for e in validated(
            [
                f.lesson_progress(student_id=student, lesson_id=lesson, progress_percent=p)
                for p in (10.0, 90.0)
            ]
        )
    ]
    random.shuffle(rows)
    (right,) = merge_rows(LESSON_PROGRESS, rows).values()
    (wrong,) = merge_rows(changed, rows).values()
    assert right["progress_percent"] != wrong["progress_percent"]
