"""Read-only report queries over the PostgreSQL store (SPEC section 8).

``ReportsRepository`` is a ``PooledRepository`` (shared/repositories/postgres/
pool.py): same store, same DSN, same connection handling, and no write path.
It is a separate instance with its own small pool on purpose, so that a burst
of report scans never holds the connections the persist and real-time paths
need. Every query (their SQL is in report_queries.py) is parameterised; each
report runs its statements on one pooled connection (one checkout, one health
check). Which index serves which query, with plans at ten million events, is
in docs/reports.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, LiteralString

from psycopg.rows import dict_row

from shared.repositories.postgres.pool import PooledRepository, Row, shared_repository
from shared.repositories.report_queries import (
    ACTIVITY_MINUTES,
    ACTIVITY_TOTALS,
    ANSWER_DISTRIBUTION,
    COHORTS,
    FORUM_CONTRIBUTORS,
    FORUM_TRENDING,
    IN_PROGRESS,
    LESSON_SUMMARY,
    NEXT_LESSONS,
    NOT_PASSED,
    OVERVIEW_CONTENT,
    OVERVIEW_LESSONS,
    OVERVIEW_QUIZZES,
    OVERVIEW_SESSIONS,
    OVERVIEW_STUDENTS,
    PROGRESS_OVER_TIME,
    QUIZ_SUMMARY,
    RECENT_ACTIVITY,
    SECTION_READERS,
    STUDENT_SUMMARY,
    TEACHER_CONTENT,
    TEACHER_FEEDBACK,
    TEACHER_LIVE,
)


def utc_date(moment: datetime) -> date:
    """The UTC day of a moment (the per-day summaries are keyed by UTC date)."""
    return moment.astimezone(UTC).date()


class ReportsRepository(PooledRepository):
    """Read-only report queries; one pool of its own beside the persist path's."""

    # No JIT: a report reads a few thousand rows at most, and compiling its
    # plan cost 7-25 ms whenever the estimate crossed jit_above_cost
    # (measured: recommendations for the busiest students, p95 12 -> 80 ms).
    SESSION_OPTIONS = "-c jit=off"

    def _queries(self, *queries: tuple[LiteralString, Mapping[str, Any]]) -> list[list[Row]]:
        """Several statements on one connection checkout, each planned for its values.

        Never prepared: the best plan depends on the values (a student with
        ten events or with a hundred thousand), and PostgreSQL's generic plan
        for a prepared statement can pick a plan that is fine on average and
        scans millions of rows for one value (measured: a recent_activity
        plan walking the whole ledger by time). Planning costs well under a
        millisecond here.
        """
        results = []
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            for query, params in queries:
                cur.execute(query, params, prepare=False)
                results.append(cur.fetchall())
        return results

    def _one(self, query: LiteralString, params: Mapping[str, Any]) -> list[Row]:
        return self._queries((query, params))[0]

    def student(self, student_id: uuid.UUID, recent: int) -> tuple[Row, list[Row]]:
        summary, activity = self._queries(
            (STUDENT_SUMMARY, {"student": student_id}),
            (RECENT_ACTIVITY, {"user": student_id, "limit": recent}),
        )
        return summary[0], activity

    def lesson(self, lesson_id: uuid.UUID, since: datetime) -> tuple[Row, list[Row], list[Row]]:
        summary, sections, daily = self._queries(
            (LESSON_SUMMARY, {"lesson": lesson_id}),
            (SECTION_READERS, {"lesson": lesson_id}),
            (PROGRESS_OVER_TIME, {"lesson": lesson_id, "since": utc_date(since)}),
        )
        return summary[0], sections, daily

    def quiz(self, quiz_id: uuid.UUID) -> tuple[Row, list[Row]]:
        summary, answers = self._queries(
            (QUIZ_SUMMARY, {"quiz": quiz_id}), (ANSWER_DISTRIBUTION, {"quiz": quiz_id})
        )
        return summary[0], answers

    def teacher(self, teacher_id: uuid.UUID) -> tuple[list[Row], list[Row], Row]:
        params = {"teacher": teacher_id}
        content, feedback, live = self._queries(
            (TEACHER_CONTENT, params), (TEACHER_FEEDBACK, params), (TEACHER_LIVE, params)
        )
        return content, feedback, live[0]

    def forum_trending(self, since: datetime, limit: int) -> list[Row]:
        return self._one(FORUM_TRENDING, {"since": since, "limit": limit})

    def forum_contributors(self, since: datetime, limit: int) -> list[Row]:
        return self._one(FORUM_CONTRIBUTORS, {"since": utc_date(since), "limit": limit})

    def activity(self, unit: str, start: datetime, end: datetime) -> list[Row]:
        """Unique events per type per bucket; hour/day windows must be whole buckets."""
        if unit == "minute":
            return self._one(ACTIVITY_MINUTES, {"from": start, "to": end})
        return self._one(ACTIVITY_TOTALS, {"unit": unit, "from": start, "to": end})

    def cohorts(self, lesson_id: uuid.UUID) -> list[Row]:
        return self._one(COHORTS, {"lesson": lesson_id})

    def overview(self, user_id: uuid.UUID, limit: int) -> dict[str, list[Row]]:
        """What a person's dashboard links to, each section newest first."""
        params = {"user": user_id, "limit": limit}
        sections = ("content", "live_sessions", "students", "lessons", "quizzes")
        found = self._queries(
            (OVERVIEW_CONTENT, params),
            (OVERVIEW_SESSIONS, params),
            (OVERVIEW_STUDENTS, params),
            (OVERVIEW_LESSONS, params),
            (OVERVIEW_QUIZZES, params),
        )
        return dict(zip(sections, found, strict=True))

    def recommendation_inputs(
        self, student_id: uuid.UUID, limit: int, lessons: int, peers: int
    ) -> tuple[list[Row], list[Row], list[Row]]:
        """In-progress lessons, quizzes not passed, and next-lesson candidates."""
        student = {"student": student_id, "limit": limit}
        in_progress, not_passed, next_lessons = self._queries(
            (IN_PROGRESS, student),
            (NOT_PASSED, student),
            (NEXT_LESSONS, student | {"lessons": lessons, "peers": peers}),
        )
        return in_progress, not_passed, next_lessons


def get_reports() -> ReportsRepository:
    """The process-wide reports repository (its own pool) for the configured POSTGRES_DSN."""
    return shared_repository(ReportsRepository)


__all__: Sequence[str] = ("ReportsRepository", "get_reports")
