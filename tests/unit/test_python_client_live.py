"""The class that `simulate.py --live` plays through the Python client (eventgen.Classroom)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scripts.eventgen import Classroom
from shared.models.events import event_adapter

# In the past, so that 30 simulated minutes never lie in the future.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def play(minutes: float, seed: int = 1, students: int = 25) -> tuple[Classroom, list[Any]]:
    classroom = Classroom(START, students=students, seed=seed)
    events: list[Any] = []
    now = START
    while now < START + timedelta(minutes=minutes):
        events += classroom.due(now)
        now += timedelta(seconds=0.5)
    events += classroom.finish(now)
    return classroom, events


@pytest.fixture(scope="module")
def half_hour() -> tuple[Classroom, list[Any]]:
    return play(30)


def test_every_event_is_valid_for_the_api(half_hour: tuple[Classroom, list[Any]]) -> None:
    _, events = half_hour
    for event in events:
        event_adapter.validate_python(event)
    assert len({e["event_id"] for e in events}) == len(events)


def test_the_class_does_everything_a_dashboard_shows(
    half_hour: tuple[Classroom, list[Any]],
) -> None:
    classroom, events = half_hour
    types = Counter(e["type"] for e in events)
    assert set(types) == {
        "lesson_progress",
        "quiz_attempt",
        "forum_activity",
        "content_activity",
        "feedback",
        "live_class_engagement",
    }
    assert classroom.started == 25
    assert classroom.completed >= 15
    assert types["quiz_attempt"] >= 15
    assert classroom.passed >= 10
    actions = Counter(e["action_type"] for e in events if e["type"] == "forum_activity")
    assert set(actions) == {"post", "reply", "like"}
    # Human pace: about one event a second, not a flood.
    assert 1000 <= len(events) <= 6000


def test_content_comes_first_from_the_one_teacher(half_hour: tuple[Classroom, list[Any]]) -> None:
    classroom, events = half_hour
    assert [e["type"] for e in events[:3]] == [
        "content_activity",
        "content_activity",
        "live_class_engagement",
    ]
    created = {e["content_id"] for e in events if e.get("action") == "created"}
    assert created == {classroom.lesson.lesson_id, classroom.quiz.quiz_id}
    teachers = {e["teacher_id"] for e in events if "teacher_id" in e}
    assert teachers == {classroom.teacher_id}


def test_progress_only_grows_and_completes_once(half_hour: tuple[Classroom, list[Any]]) -> None:
    _, events = half_hour
    by_student: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        if event["type"] == "lesson_progress":
            by_student[event["student_id"]].append(event)
    for updates in by_student.values():
        percents = [u["progress_percent"] for u in updates]
        assert percents == sorted(percents)
        sections = [len(u["sections_read"]) for u in updates]
        assert sections == sorted(sections)
        watched = [u["video_watch_time"] for u in updates]
        assert watched == sorted(watched)
        done = [u for u in updates if u["completed_at"]]
        assert len(done) <= 1
        assert all(u["progress_percent"] == 100 for u in done)


def test_quiz_attempts_count_up_and_stop_after_a_pass(
    half_hour: tuple[Classroom, list[Any]],
) -> None:
    _, events = half_hour
    attempts: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        if event["type"] == "quiz_attempt":
            attempts[event["student_id"]].append(event)
    for tries in attempts.values():
        assert [t["attempt_number"] for t in tries] == list(range(1, len(tries) + 1))
        assert len(tries) <= Classroom.PASS_ATTEMPTS
        assert not any(t["is_passed"] for t in tries[:-1])
    submissions = {e["attempt_id"] for e in events if e["type"] == "quiz_attempt"}
    feedback = [e for e in events if e["type"] == "feedback"]
    assert {e["submission_id"] for e in feedback} <= submissions


def test_forum_replies_and_likes_refer_to_earlier_posts(
    half_hour: tuple[Classroom, list[Any]],
) -> None:
    _, events = half_hour
    authors: dict[str, str] = {}
    likes: set[tuple[str, str]] = set()
    for event in (e for e in events if e["type"] == "forum_activity"):
        if event["action_type"] == "like":
            assert authors[event["post_id"]] != event["user_id"]
            assert (event["user_id"], event["post_id"]) not in likes
            likes.add((event["user_id"], event["post_id"]))
            continue
        if event["action_type"] == "reply":
            assert event["parent_post_id"] in authors
        authors[event["post_id"]] = event["user_id"]


def test_the_live_session_grows_then_ends(half_hour: tuple[Classroom, list[Any]]) -> None:
    classroom, events = half_hour
    snapshots = [e for e in events if e["type"] == "live_class_engagement"]
    assert {s["session_id"] for s in snapshots} == {classroom.session_id}
    durations = [s["duration_seconds"] for s in snapshots]
    assert durations == sorted(durations)
    assert durations[-1] >= 29 * 60
    messages = [s["messages_sent"] for s in snapshots]
    assert messages == sorted(messages)
    assert len(snapshots[-1]["polls_launched"]) >= 5
    assert all(s["left_at"] is None for s in snapshots[:-1])
    assert snapshots[-1]["left_at"] is not None
    assert classroom.finish(START + timedelta(hours=1)) == []  # ends once


def test_the_same_seed_and_times_give_the_same_class() -> None:
    _, first = play(3, seed=9, students=5)
    _, again = play(3, seed=9, students=5)
    _, other = play(3, seed=10, students=5)
    assert first == again
    assert first != other


def test_students_arrive_within_seconds() -> None:
    classroom, events = play(0.25)
    assert classroom.started >= 5
    assert events[-1]["type"] == "live_class_engagement"
