"""Reports (SPEC section 8): figures shaped from the reports repository.

Conventions, documented in docs/reports.md: counts and sums are 0 without
data; averages, medians and rates are None when there is nothing to average;
averages are rounded to 2 decimals, rates and shares to 4. Windows are UTC
and relative to ``now`` (which callers pass in, so tests and benchmarks pin it).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared import limits
from shared.errors import InvalidInput
from shared.models.reports import (
    ActivityBucket,
    ActivityItem,
    ActivityReport,
    Cohort,
    Contributor,
    DailyProgress,
    ForumContributors,
    ForumTrending,
    LessonCohorts,
    LessonReport,
    Overview,
    QuizReport,
    StudentReport,
    TeacherReport,
    TrendingThread,
)

Row = dict[str, Any]

AVERAGE_DIGITS = 2
RATE_DIGITS = 4

# bucket name -> (date_trunc unit, the longest [from, to) span allowed)
BUCKETS: Mapping[str, tuple[str, timedelta]] = {
    "minute": ("minute", limits.ACTIVITY_MAX_SPAN_MINUTE),
    "hour": ("hour", limits.ACTIVITY_MAX_SPAN_HOUR),
    "day": ("day", limits.ACTIVITY_MAX_SPAN_DAY),
}
CONTENT_TYPES = ("lesson", "quiz", "assignment")
FEEDBACK_TYPES = ("text", "rubric", "audio")


class ReportSource(Protocol):
    """What the reports need from PostgreSQL (implemented by ReportsRepository)."""

    def student(self, student_id: uuid.UUID, recent: int) -> tuple[Row, list[Row]]: ...
    def lesson(self, lesson_id: uuid.UUID, since: datetime) -> tuple[Row, list[Row], list[Row]]: ...
    def quiz(self, quiz_id: uuid.UUID) -> tuple[Row, list[Row]]: ...
    def teacher(self, teacher_id: uuid.UUID) -> tuple[list[Row], list[Row], Row]: ...
    def forum_trending(self, since: datetime, limit: int) -> list[Row]: ...
    def forum_contributors(self, since: datetime, limit: int) -> list[Row]: ...
    def activity(self, unit: str, start: datetime, end: datetime) -> list[Row]: ...
    def cohorts(self, lesson_id: uuid.UUID) -> list[Row]: ...
    def overview(self, user_id: uuid.UUID, limit: int) -> dict[str, list[Row]]: ...


def whole_days_since(now: datetime, days: int) -> datetime:
    """Midnight UTC starting a window of whole UTC days: today and the days-1 before it.

    Windows counted in days are whole UTC days because their reports read
    per-day summaries (sql/011, sql/012), never a partial day.
    """
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    return today - timedelta(days=days - 1)


def average(value: Any) -> float | None:
    """An average rounded to 2 decimals; None stays None (nothing to average)."""
    return None if value is None else round(float(value), AVERAGE_DIGITS)


def rate(numerator: int, denominator: int) -> float | None:
    """A share in 0..1 rounded to 4 decimals; None when the denominator is 0."""
    return None if denominator == 0 else round(numerator / denominator, RATE_DIGITS)


def answer_key(value: Any) -> str:
    """How an answer is keyed: a string as itself, any other JSON value as canonical JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def student_report(student_id: uuid.UUID, source: ReportSource) -> StudentReport:
    summary, recent = source.student(student_id, limits.RECENT_ACTIVITY_ITEMS)
    return StudentReport(
        student_id=student_id,
        lessons_started=summary["lessons_started"],
        lessons_completed=summary["lessons_completed"],
        avg_progress_percent=average(summary["avg_progress_percent"]),
        total_video_watch_time=int(summary["total_video_watch_time"]),
        quiz_attempts=summary["quiz_attempts"],
        quizzes_passed=summary["quizzes_passed"],
        avg_quiz_score=average(summary["avg_quiz_score"]),
        forum_posts=summary["forum_posts"],
        forum_replies=summary["forum_replies"],
        likes_given=summary["likes_given"],
        likes_received=summary["likes_received"],
        feedback_received=summary["feedback_received"],
        avg_feedback_score=average(summary["avg_feedback_score"]),
        recent_activity=[ActivityItem.model_validate(row) for row in recent],
    )


def lesson_report(
    lesson_id: uuid.UUID, days: int, now: datetime, source: ReportSource
) -> LessonReport:
    summary, sections, daily = source.lesson(lesson_id, whole_days_since(now, days))
    return LessonReport(
        lesson_id=lesson_id,
        students_started=summary["students_started"],
        students_completed=summary["students_completed"],
        completion_rate=rate(summary["students_completed"], summary["students_started"]),
        avg_progress_percent=average(summary["avg_progress_percent"]),
        avg_video_watch_time=average(summary["avg_video_watch_time"]),
        section_readers={row["section"]: row["readers"] for row in sections},
        progress_over_time=[
            DailyProgress(
                day=row["day"],
                active_students=row["active_students"],
                avg_progress_percent=round(float(row["avg_progress_percent"]), AVERAGE_DIGITS),
            )
            for row in daily
        ],
    )


def quiz_report(quiz_id: uuid.UUID, source: ReportSource) -> QuizReport:
    summary, answers = source.quiz(quiz_id)
    distribution: dict[str, dict[str, int]] = defaultdict(dict)
    for row in answers:
        per_question = distribution[row["question_id"]]
        key = answer_key(row["answer"])
        # Counts are kept per jsonb text; values that print the same key (the
        # string "1" and the number 1) are added together.
        per_question[key] = per_question.get(key, 0) + int(row["attempts"])
    return QuizReport(
        quiz_id=quiz_id,
        attempts=summary["attempts"],
        students=summary["students"],
        avg_score=average(summary["avg_score"]),
        median_score=None if summary["median_score"] is None else float(summary["median_score"]),
        pass_rate=None if summary["pass_rate"] is None else round(float(summary["pass_rate"]), 4),
        avg_attempts_to_pass=average(summary["avg_attempts_to_pass"]),
        avg_duration_seconds=average(summary["avg_duration_seconds"]),
        answer_distribution={
            question: dict(sorted(answers_.items()))
            for question, answers_ in sorted(distribution.items())
        },
    )


def teacher_report(teacher_id: uuid.UUID, source: ReportSource) -> TeacherReport:
    content, feedback, live = source.teacher(teacher_id)
    created = dict.fromkeys(CONTENT_TYPES, 0)
    updated = dict.fromkeys(CONTENT_TYPES, 0)
    for row in content:
        (created if row["action"] == "created" else updated)[row["content_type"]] = row["n"]
    given = dict.fromkeys(FEEDBACK_TYPES, 0)
    scored, score_sum = 0, 0.0
    for row in feedback:
        given[row["feedback_type"]] = row["n"]
        scored += row["scored"]
        score_sum += float(row["score_sum"] or 0.0)
    return TeacherReport(
        teacher_id=teacher_id,
        content_created=created,
        content_updated=updated,
        feedback_given=given,
        avg_feedback_score=average(score_sum / scored) if scored else None,
        live_sessions=live["live_sessions"],
        live_seconds=int(live["live_seconds"]),
        polls_launched=int(live["polls_launched"]),
        messages_sent=int(live["messages_sent"]),
    )


def forum_trending(hours: int, limit: int, now: datetime, source: ReportSource) -> ForumTrending:
    since = now - timedelta(hours=hours)
    rows = source.forum_trending(since, limit)
    return ForumTrending(
        hours=hours, since=since, threads=[TrendingThread.model_validate(row) for row in rows]
    )


def forum_contributors(
    days: int, limit: int, now: datetime, source: ReportSource
) -> ForumContributors:
    since = whole_days_since(now, days)
    rows = source.forum_contributors(since, limit)
    return ForumContributors(
        days=days,
        since=since,
        contributors=[
            Contributor(contributions=row["posts"] + row["replies"], **row) for row in rows
        ],
    )


def activity_report(
    start: datetime | None,
    end: datetime | None,
    bucket: str,
    now: datetime,
    source: ReportSource,
) -> ActivityReport:
    """Unique events per type per bucket in [start, end), from the roll-ups.

    Minute buckets take the window as given; hour and day buckets widen it to
    whole buckets (start rounded down, end up), and the answer says so.
    """
    unit, max_span = BUCKETS[bucket]
    end = end or now
    start = start or end - limits.ACTIVITY_DEFAULT_SPAN
    if start >= end:
        raise InvalidInput("from must be before to", field="from", rule="order")
    if end - start > max_span:
        raise InvalidInput(
            f"to - from must be at most {max_span.total_seconds() / 86400:g} days "
            f"for bucket={bucket}",
            field="to",
            rule="span",
        )
    if unit != "minute":
        # The hour and day totals hold whole buckets: widen the window to them.
        start, end = floor(start, unit), ceil(end, unit)
    buckets: dict[datetime, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for row in source.activity(unit, start, end):
        counts = buckets.setdefault(row["bucket_start"].astimezone(UTC), {})
        counts[row["type"]] = int(row["n"])
        totals[row["type"]] = totals.get(row["type"], 0) + int(row["n"])
    return ActivityReport(
        from_=start,
        to=end,
        bucket=bucket,
        buckets=[
            ActivityBucket(bucket_start=moment, counts=counts, total=sum(counts.values()))
            for moment, counts in buckets.items()
        ],
        totals=dict(sorted(totals.items())),
    )


def floor(moment: datetime, unit: str) -> datetime:
    """The start of the UTC hour or day holding ``moment``."""
    moment = moment.astimezone(UTC)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil(moment: datetime, unit: str) -> datetime:
    """The start of the first UTC hour or day at or after ``moment``."""
    start = floor(moment, unit)
    if start == moment:
        return start
    return start + (timedelta(hours=1) if unit == "hour" else timedelta(days=1))


def lesson_cohorts(lesson_id: uuid.UUID, source: ReportSource) -> LessonCohorts:
    cohorts = []
    for row in source.cohorts(lesson_id):
        week_start = row["week_start"].astimezone(UTC).date()
        year, week, _ = week_start.isocalendar()
        students = row["students"]
        cohorts.append(
            Cohort(
                week=f"{year}-W{week:02d}",
                week_start=week_start,
                students=students,
                completed_within_1_week=round(row["within_1"] / students, RATE_DIGITS),
                completed_within_2_weeks=round(row["within_2"] / students, RATE_DIGITS),
                completed_within_4_weeks=round(row["within_4"] / students, RATE_DIGITS),
            )
        )
    return LessonCohorts(lesson_id=lesson_id, cohorts=cohorts)


def overview(user_id: uuid.UUID, source: ReportSource) -> Overview:
    """What the person's dashboard links to (each section the newest ``OVERVIEW_ITEMS``)."""
    return Overview.model_validate(
        {"user_id": user_id, **source.overview(user_id, limits.OVERVIEW_ITEMS)}
    )
