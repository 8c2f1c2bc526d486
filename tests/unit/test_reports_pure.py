"""Pure pieces of the reports: rounding, answer keys, windows, recommendation ranking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import limits
from shared.errors import InvalidInput
from shared.services import recommendations, reports

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)


class FakeSource:
    """Records the arguments of the repository calls the services make."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def activity(self, unit: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        self.calls.append(("activity", (unit, start, end)))
        return [
            {"bucket_start": start, "type": "feedback", "n": 2},
            {"bucket_start": start, "type": "quiz_attempt", "n": 3},
        ]

    def lesson(
        self, lesson_id: uuid.UUID, since: datetime
    ) -> tuple[dict[str, Any], list[Any], list[Any]]:
        self.calls.append(("lesson", (lesson_id, since)))
        summary = {
            "students_started": 3,
            "students_completed": 1,
            "avg_progress_percent": 33.333333,
            "avg_video_watch_time": None,
        }
        return summary, [], []


def test_averages_round_to_two_decimals_and_keep_none() -> None:
    assert reports.average(2 / 3) == 0.67
    assert reports.average(None) is None
    assert reports.rate(1, 3) == 0.3333
    assert reports.rate(0, 0) is None


@pytest.mark.parametrize(
    ("answer", "key"),
    [
        ("b", "b"),
        ("", ""),
        (1, "1"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1,"a"]'),
        ({"b": 1, "a": {"d": 2, "c": 3}}, '{"a":{"c":3,"d":2},"b":1}'),
        ("é", "é"),
        (["é"], '["é"]'),
    ],
)
def test_answer_keys_are_strings_or_canonical_json(answer: Any, key: str) -> None:
    assert reports.answer_key(answer) == key


def test_activity_window_defaults_and_limits() -> None:
    source = FakeSource()
    report = reports.activity_report(None, None, "minute", NOW, source)
    assert source.calls == [("activity", ("minute", NOW - timedelta(hours=24), NOW))]
    assert report.totals == {"feedback": 2, "quiz_attempt": 3}
    assert report.buckets[0].total == 5
    for bucket, span in (
        ("minute", limits.ACTIVITY_MAX_SPAN_MINUTE),
        ("hour", limits.ACTIVITY_MAX_SPAN_HOUR),
        ("day", limits.ACTIVITY_MAX_SPAN_DAY),
    ):
        reports.activity_report(NOW - span, NOW, bucket, NOW, source)  # the longest allowed
        with pytest.raises(InvalidInput, match=f"for bucket={bucket}"):
            reports.activity_report(NOW - span - timedelta(seconds=1), NOW, bucket, NOW, source)
    with pytest.raises(InvalidInput, match="from must be before to"):
        reports.activity_report(NOW, NOW, "day", NOW, source)


def test_hour_and_day_windows_widen_to_whole_buckets() -> None:
    source = FakeSource()
    start = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
    hours = reports.activity_report(start, NOW, "hour", NOW, source)
    assert (hours.from_, hours.to) == (
        datetime(2026, 11, 20, 10, tzinfo=UTC),
        datetime(2026, 11, 24, 16, tzinfo=UTC),
    )
    days = reports.activity_report(start, NOW, "day", NOW, source)
    assert (days.from_, days.to) == (
        datetime(2026, 11, 20, tzinfo=UTC),
        datetime(2026, 11, 25, tzinfo=UTC),
    )
    aligned = datetime(2026, 11, 24, tzinfo=UTC)
    assert reports.ceil(aligned, "day") == aligned == reports.floor(aligned, "day")


def test_every_bucket_size_caps_the_number_of_buckets() -> None:
    widths = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
    for bucket, (_, span) in reports.BUCKETS.items():
        assert span / widths[bucket] <= 1_500


def test_lesson_window_is_whole_utc_days() -> None:
    source = FakeSource()
    lesson = uuid.uuid4()
    report = reports.lesson_report(lesson, 7, NOW, source)
    assert source.calls == [("lesson", (lesson, datetime(2026, 11, 18, tzinfo=UTC)))]
    assert report.completion_rate == 0.3333
    assert report.avg_progress_percent == 33.33
    assert report.avg_video_watch_time is None


def _lesson(progress: float, hours_ago: int) -> dict[str, Any]:
    return {
        "lesson_id": uuid.UUID(int=hours_ago + 1),
        "progress_percent": progress,
        "last_accessed_at": NOW - timedelta(hours=hours_ago),
    }


def _quiz(best: float, attempts: int, n: int) -> dict[str, Any]:
    return {
        "quiz_id": uuid.UUID(int=1000 + n),
        "attempts": attempts,
        "best_score": best,
        "last_submitted_at": NOW,
    }


def test_recommendations_interleave_by_score() -> None:
    student = uuid.uuid4()
    result = recommendations.build(
        student,
        [_lesson(45.5, 1), _lesson(10, 5), _lesson(90, 9)],
        [_quiz(5, 1, 1), _quiz(3, 4, 2)],
        [{"lesson_id": uuid.UUID(int=77), "peers": 3, "considered": 4}],
        limit=10,
    )
    assert [(item.kind, item.score) for item in result.items] == [
        ("resume_lesson", 1.0),
        ("retry_quiz", 0.9),
        ("resume_lesson", 0.8),
        ("resume_lesson", 0.7),
        ("retry_quiz", 0.7),
        ("next_lesson", 0.6),
    ]
    assert result.items[0].reason == (
        "You are 45.5% through this lesson; last opened 2026-11-24 14:30 UTC."
    )
    assert result.items[1].reason == "Not passed yet after 1 attempt; your best score is 5."
    assert result.items[-1].reason == (
        "3 of 4 students who completed lessons you completed started this lesson next."
    )
    limited = recommendations.build(student, [_lesson(1, 1)], [_quiz(1, 1, 1)], [], limit=1)
    assert [item.kind for item in limited.items] == ["resume_lesson"]


@given(
    st.lists(st.integers(0, 100), max_size=8),
    st.lists(st.integers(0, 10), max_size=8),
    st.lists(st.tuples(st.integers(1, 5), st.integers(5, 9)), max_size=8),
)
def test_recommendations_do_not_depend_on_input_order(
    progress: list[int], best: list[int], peers: list[tuple[int, int]]
) -> None:
    student = uuid.UUID(int=1)
    lessons = [_lesson(p, n) for n, p in enumerate(progress)]
    quizzes = [_quiz(b, 1, n) for n, b in enumerate(best)]
    following = [
        {"lesson_id": uuid.UUID(int=500 + n), "peers": p, "considered": c}
        for n, (p, c) in enumerate(peers)
    ]
    first = recommendations.build(student, lessons, quizzes, following, limit=50)
    again = recommendations.build(student, lessons, quizzes, following[::-1], limit=50)
    assert first == again
    scores = [item.score for item in first.items]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores if score)


def test_recent_activity_knows_every_type_naming_a_second_user() -> None:
    """RECENT_ACTIVITY reads other parties from the feedback table only; a new
    subject field on another type must be added there (and to this list)."""
    from shared.models.events import MODEL_BY_TYPE

    with_subjects = {name for name, model in MODEL_BY_TYPE.items() if model.subject_fields}
    assert with_subjects == {"feedback"}
    assert MODEL_BY_TYPE["feedback"].subject_fields == ("student_id",)
