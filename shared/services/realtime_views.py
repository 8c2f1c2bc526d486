"""Real-time views: Redis first, rebuilt from PostgreSQL when Redis lacks them.

When Redis has lost a view (flushed, restarted, expired) the PostgreSQL state
is merged back into it with the same order-independent merge the live updates
use, then the view is read from Redis; when Redis is down the answer is built
from PostgreSQL directly. All three ways give the same answer (the conversions
are ``shared.services.realtime``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from redis.exceptions import RedisError

from shared.errors import NotFound
from shared.models.api import (
    Leaderboard,
    LessonStudents,
    LiveSession,
    Notifications,
    StudentProgress,
)
from shared.repositories.realtime import NOTIFICATIONS_KEPT, RealtimeRepository
from shared.services.realtime import (
    leaderboard_entry,
    lesson_student,
    lesson_students_from_rows,
    lessons_from_hash,
    lessons_from_rows,
    notification_from_row,
    notification_item,
    ranked_from_attempts,
    session_from_hash,
    session_from_rows,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
V = TypeVar("V")


class RealtimeSource(Protocol):
    """What the views need from PostgreSQL (implemented by PostgresRepository)."""

    def lesson_progress_for_student(self, student_id: uuid.UUID) -> list[dict[str, Any]]: ...
    def lesson_progress_for_lesson(
        self, lesson_id: uuid.UUID, limit: int | None
    ) -> list[dict[str, Any]]: ...
    def quiz_attempts_for_quiz(self, quiz_id: uuid.UUID) -> list[dict[str, Any]]: ...
    def notifications_for_user(self, user_id: uuid.UUID, limit: int) -> list[dict[str, Any]]: ...
    def live_session(self, session_id: uuid.UUID) -> list[dict[str, Any]]: ...


def _map(value: V | None, convert: Callable[[V], T]) -> T | None:
    return None if value is None else convert(value)


def _redis_first(
    view: str,
    cached: Callable[[], T | None],
    rebuild: Callable[[], object],
    direct: Callable[[], T],
) -> T:
    """Redis's answer; when Redis lacks the view, merge PostgreSQL's state in first;
    when Redis is down (or still lacks it), the answer built from PostgreSQL."""
    try:
        found = cached()
        if found is None:
            rebuild()
            found = cached()
        if found is not None:
            return found
    except RedisError as exc:
        log.warning("%s from PostgreSQL, Redis is down: %s", view, exc)
    return direct()


def student_progress(
    student_id: uuid.UUID, realtime: RealtimeRepository, source: RealtimeSource
) -> StudentProgress:
    sid = str(student_id)
    lessons = _redis_first(
        "progress",
        lambda: _map(realtime.progress(sid), lessons_from_hash),
        lambda: realtime.load_progress(sid, source.lesson_progress_for_student(student_id)),
        lambda: lessons_from_rows(source.lesson_progress_for_student(student_id)),
    )
    lessons.sort(key=lambda item: (-item.last_accessed_at.timestamp(), str(item.lesson_id)))
    return StudentProgress(student_id=student_id, lessons=lessons)


def lesson_progress(
    lesson_id: uuid.UUID, limit: int, realtime: RealtimeRepository, source: RealtimeSource
) -> LessonStudents:
    """Each student's progress in one lesson, most recently active first (a class's bars)."""
    lid = str(lesson_id)
    students = _redis_first(
        "lesson progress",
        lambda: _map(
            realtime.lesson_progress(lid, limit),
            lambda found: [lesson_student(student, v) for student, v in found],
        ),
        lambda: realtime.load_lesson(lid, source.lesson_progress_for_lesson(lesson_id, None)),
        lambda: lesson_students_from_rows(source.lesson_progress_for_lesson(lesson_id, limit)),
    )
    students.sort(key=lambda item: (-item.last_accessed_at.timestamp(), str(item.student_id)))
    return LessonStudents(lesson_id=lesson_id, students=students)


def _viewer_position(
    quiz_id: uuid.UUID, student_id: uuid.UUID, realtime: RealtimeRepository, source: RealtimeSource
) -> dict[str, Any] | None:
    """The student's own row with its rank, Redis first; None when they never attempted it."""
    try:
        found = realtime.leaderboard_position(str(quiz_id), str(student_id))
    except RedisError as exc:
        log.warning("leaderboard position from PostgreSQL, Redis is down: %s", exc)
        found = None
    if found is None:
        ranked = ranked_from_attempts(source.quiz_attempts_for_quiz(quiz_id), None)
        found = next(
            (
                row | {"rank": rank}
                for rank, row in enumerate(ranked, 1)
                if row["student_id"] == str(student_id)
            ),
            {},
        )
    return found or None


def quiz_leaderboard(
    quiz_id: uuid.UUID,
    limit: int,
    realtime: RealtimeRepository,
    source: RealtimeSource,
    viewer: uuid.UUID | None = None,
) -> Leaderboard:
    """The top ``limit`` entries; for a ``viewer`` (a student), other students' ids
    hidden and the viewer's own entry added, wherever it ranks."""
    qid = str(quiz_id)
    rows = _redis_first(
        "leaderboard",
        lambda: realtime.leaderboard(qid, limit),
        lambda: realtime.load_leaderboard(qid, source.quiz_attempts_for_quiz(quiz_id)),
        lambda: ranked_from_attempts(source.quiz_attempts_for_quiz(quiz_id), limit),
    )
    mine = str(viewer) if viewer else None
    entries = [
        leaderboard_entry(rank, row, viewer is None or row["student_id"] == mine)
        for rank, row in enumerate(rows, start=1)
    ]
    board = Leaderboard(quiz_id=quiz_id, entries=entries)
    if viewer is not None:
        position = _viewer_position(quiz_id, viewer, realtime, source)
        if position is not None:
            board.viewer = leaderboard_entry(int(position["rank"]), position, True)
    return board


def user_notifications(
    user_id: uuid.UUID, limit: int, realtime: RealtimeRepository, source: RealtimeSource
) -> Notifications:
    uid = str(user_id)
    items = _redis_first(
        "notifications",
        lambda: realtime.notifications(uid, limit),
        lambda: realtime.load_notifications(
            uid,
            map(notification_from_row, source.notifications_for_user(user_id, NOTIFICATIONS_KEPT)),
        ),
        lambda: sorted(
            map(notification_from_row, source.notifications_for_user(user_id, limit)),
            key=lambda n: (n.score(), n.payload()),
            reverse=True,
        ),
    )
    return Notifications(
        user_id=user_id,
        notifications=[notification_item(item) for item in items[:limit]],
    )


def live_session(
    session_id: uuid.UUID, realtime: RealtimeRepository, source: RealtimeSource
) -> LiveSession:
    sess = str(session_id)
    class_id, teachers = _redis_first(
        "live session",
        lambda: _map(realtime.live_session(sess), session_from_hash),
        lambda: realtime.load_live_session(sess, source.live_session(session_id)),
        lambda: session_from_rows(source.live_session(session_id)),
    )
    if class_id is None:
        raise NotFound(f"no live session {session_id}", what="live session", key=session_id)
    teachers.sort(key=lambda t: (t.joined_at, str(t.teacher_id)))
    return LiveSession(session_id=session_id, class_id=uuid.UUID(class_id), teachers=teachers)
