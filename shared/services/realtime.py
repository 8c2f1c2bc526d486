"""Real-time views: Redis first, rebuilt from PostgreSQL when Redis lacks them.

When Redis has lost a view (flushed, restarted, expired) the PostgreSQL state
is merged back into it with the same order-independent merge the live updates
use, then the view is read from Redis; when Redis is down the answer is built
from PostgreSQL directly. All three ways give the same answer.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, overload

from redis.exceptions import RedisError

from shared.http import NotFound
from shared.models.api import (
    Leaderboard,
    LeaderboardEntry,
    LessonState,
    LessonStudent,
    LessonStudents,
    LiveSession,
    LiveTeacher,
    NotificationItem,
    Notifications,
    StudentProgress,
)
from shared.models.events import ActivityEvent
from shared.models.privacy import RealtimeExport, RealtimeLiveSession, RealtimeStanding
from shared.repositories.realtime import (
    NOTIFICATIONS_KEPT,
    Notification,
    RealtimeRepository,
    leaderboard_member,
    parse_redis_ts,
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


def record(realtime: RealtimeRepository, events: Sequence[ActivityEvent], at: datetime) -> bool:
    """Apply accepted events to Redis right away; False (logged) when Redis is down.

    A failure here loses nothing: the realtime queue applies the same events
    again (idempotently) once Redis is back.
    """
    try:
        realtime.apply_events(events, at)
    except RedisError as exc:
        log.warning("real-time update deferred to the realtime queue: %s", exc)
        return False
    return True


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


@overload
def _utc(value: datetime) -> datetime: ...
@overload
def _utc(value: None) -> None: ...
def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


# --- student progress ---------------------------------------------------------------


def _by_owner(data: dict[str, str]) -> dict[str, dict[str, str]]:
    """A view hash's ``{owner}|{field}`` entries, grouped by owner (lesson, teacher)."""
    grouped: dict[str, dict[str, str]] = {}
    for field, value in data.items():
        if "|" in field:
            owner, name = field.split("|", 1)
            grouped.setdefault(owner, {})[name] = value
    return grouped


def _lessons_from_hash(data: dict[str, str]) -> list[LessonState]:
    return [
        LessonState(
            lesson_id=uuid.UUID(lesson),
            started_at=parse_redis_ts(v["started_at"]),
            completed_at=parse_redis_ts(v.get("completed_at")),
            progress_percent=float(v["progress_percent"]),
            video_watch_time=int(v["video_watch_time"]),
            sections_read=sorted(json.loads(v.get("sections_read", "[]"))),
            last_accessed_at=parse_redis_ts(v["last_accessed_at"]),
        )
        for lesson, v in _by_owner(data).items()
    ]


def _lessons_from_rows(rows: Iterable[dict[str, Any]]) -> list[LessonState]:
    return [
        LessonState(
            lesson_id=row["lesson_id"],
            started_at=_utc(row["started_at"]),
            completed_at=_utc(row["completed_at"]),
            progress_percent=float(row["progress_percent"]),
            video_watch_time=int(row["video_watch_time"]),
            sections_read=sorted(row["sections_read"]),
            last_accessed_at=_utc(row["last_accessed_at"]),
        )
        for row in rows
    ]


def student_progress(
    student_id: uuid.UUID, realtime: RealtimeRepository, source: RealtimeSource
) -> StudentProgress:
    sid = str(student_id)
    lessons = _redis_first(
        "progress",
        lambda: _map(realtime.progress(sid), _lessons_from_hash),
        lambda: realtime.load_progress(sid, source.lesson_progress_for_student(student_id)),
        lambda: _lessons_from_rows(source.lesson_progress_for_student(student_id)),
    )
    lessons.sort(key=lambda item: (-item.last_accessed_at.timestamp(), str(item.lesson_id)))
    return StudentProgress(student_id=student_id, lessons=lessons)


# --- a lesson's students -------------------------------------------------------------


def _lesson_student(student: str, v: dict[str, Any]) -> LessonStudent:
    return LessonStudent(
        student_id=uuid.UUID(student),
        started_at=parse_redis_ts(v["started_at"]),
        completed_at=parse_redis_ts(v.get("completed_at")),
        progress_percent=float(v["progress_percent"]),
        video_watch_time=int(v["video_watch_time"]),
        sections_read=sorted(json.loads(v.get("sections_read") or "[]")),
        last_accessed_at=parse_redis_ts(v["last_accessed_at"]),
    )


def _lesson_students_from_rows(rows: list[dict[str, Any]]) -> list[LessonStudent]:
    return [
        LessonStudent(student_id=row["student_id"], **state.model_dump(exclude={"lesson_id"}))
        for row, state in zip(rows, _lessons_from_rows(rows), strict=True)
    ]


def lesson_progress(
    lesson_id: uuid.UUID, limit: int, realtime: RealtimeRepository, source: RealtimeSource
) -> LessonStudents:
    """Each student's progress in one lesson, most recently active first (a class's bars)."""
    lid = str(lesson_id)
    students = _redis_first(
        "lesson progress",
        lambda: _map(
            realtime.lesson_progress(lid, limit),
            lambda found: [_lesson_student(student, v) for student, v in found],
        ),
        lambda: realtime.load_lesson(lid, source.lesson_progress_for_lesson(lesson_id, None)),
        lambda: _lesson_students_from_rows(source.lesson_progress_for_lesson(lesson_id, limit)),
    )
    students.sort(key=lambda item: (-item.last_accessed_at.timestamp(), str(item.student_id)))
    return LessonStudents(lesson_id=lesson_id, students=students)


# --- quiz leaderboard --------------------------------------------------------------


def _ranked_from_attempts(
    attempts: Iterable[dict[str, Any]], limit: int | None
) -> list[dict[str, Any]]:
    """The leaderboard computed from stored attempts, in exactly Redis's order."""
    best: dict[str, dict[str, Any]] = {}
    for row in attempts:
        student = str(row["student_id"])
        score, at = float(row["score"]), _utc(row["submitted_at"])
        entry = best.setdefault(student, {"student_id": student, "attempts": 0})
        entry["attempts"] += 1
        first = "best_score" not in entry
        if first or (score, -at.timestamp()) > (
            entry["best_score"],
            -entry["submitted_at"].timestamp(),
        ):
            entry["best_score"], entry["submitted_at"] = score, at
    # ZREVRANGE: score descending, equal scores by member descending.
    ranked = sorted(
        best.values(),
        key=lambda e: (e["best_score"], leaderboard_member(e["student_id"], e["submitted_at"])),
        reverse=True,
    )
    return ranked[:limit]


def _entry(rank: int, row: dict[str, Any], shown: bool) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank=rank,
        student_id=uuid.UUID(row["student_id"]) if shown else None,
        best_score=float(row["best_score"]),
        attempts=int(row["attempts"]),
    )


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
        ranked = _ranked_from_attempts(source.quiz_attempts_for_quiz(quiz_id), None)
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
        lambda: _ranked_from_attempts(source.quiz_attempts_for_quiz(quiz_id), limit),
    )
    mine = str(viewer) if viewer else None
    entries = [
        _entry(rank, row, viewer is None or row["student_id"] == mine)
        for rank, row in enumerate(rows, start=1)
    ]
    board = Leaderboard(quiz_id=quiz_id, entries=entries)
    if viewer is not None:
        position = _viewer_position(quiz_id, viewer, realtime, source)
        if position is not None:
            board.viewer = _entry(int(position["rank"]), position, True)
    return board


# --- notifications ---------------------------------------------------------------------


def _notification_from_row(row: dict[str, Any]) -> Notification:
    return Notification(
        type=row["type"],
        post_id=str(row["post_id"]),
        thread_id=str(row["thread_id"]),
        actor_id=str(row["actor_id"]),
        created_at=_utc(row["created_at"]),
        event_id=str(row["event_id"]),
    )


def user_notifications(
    user_id: uuid.UUID, limit: int, realtime: RealtimeRepository, source: RealtimeSource
) -> Notifications:
    uid = str(user_id)
    items = _redis_first(
        "notifications",
        lambda: realtime.notifications(uid, limit),
        lambda: realtime.load_notifications(
            uid,
            map(_notification_from_row, source.notifications_for_user(user_id, NOTIFICATIONS_KEPT)),
        ),
        lambda: sorted(
            map(_notification_from_row, source.notifications_for_user(user_id, limit)),
            key=lambda n: (n.score(), n.payload()),
            reverse=True,
        ),
    )
    return Notifications(
        user_id=user_id,
        notifications=[
            NotificationItem(
                type=item.type,
                post_id=uuid.UUID(item.post_id),
                thread_id=uuid.UUID(item.thread_id),
                actor_id=uuid.UUID(item.actor_id),
                created_at=item.created_at,
                event_id=uuid.UUID(item.event_id),
            )
            for item in items[:limit]
        ],
    )


# --- live class sessions ---------------------------------------------------------------


def _teachers_from_hash(data: dict[str, str]) -> list[LiveTeacher]:
    return [
        LiveTeacher(
            teacher_id=uuid.UUID(teacher),
            joined_at=parse_redis_ts(v["joined_at"]),
            left_at=parse_redis_ts(v.get("left_at")),
            duration_seconds=int(v["duration_seconds"]),
            polls_launched=[uuid.UUID(p) for p in sorted(json.loads(v["polls_launched"]))],
            messages_sent=int(v["messages_sent"]),
            active=v.get("left_at") is None,
        )
        for teacher, v in _by_owner(data).items()
    ]


def _teachers_from_rows(rows: Iterable[dict[str, Any]]) -> list[LiveTeacher]:
    return [
        LiveTeacher(
            teacher_id=row["teacher_id"],
            joined_at=_utc(row["joined_at"]),
            left_at=_utc(row["left_at"]),
            duration_seconds=int(row["duration_seconds"]),
            polls_launched=sorted(row["polls_launched"], key=str),
            messages_sent=int(row["messages_sent"]),
            active=row["left_at"] is None,
        )
        for row in rows
    ]


def _session_from_hash(data: dict[str, str]) -> tuple[str | None, list[LiveTeacher]]:
    """The session's class (as PostgreSQL answers it: the first teacher to join's,
    by joined_at then teacher_id) and its teachers."""
    teachers = _teachers_from_hash(data)
    owners = _by_owner(data)
    first = min(teachers, key=lambda t: (t.joined_at, str(t.teacher_id)), default=None)
    # A hash written before class_id was kept per teacher has the session's only.
    class_id = owners[str(first.teacher_id)].get("class_id") if first else None
    return class_id or data.get("class_id"), teachers


def _session_from_rows(rows: list[dict[str, Any]]) -> tuple[str | None, list[LiveTeacher]]:
    return (str(rows[0]["class_id"]) if rows else None), _teachers_from_rows(rows)


def live_session(
    session_id: uuid.UUID, realtime: RealtimeRepository, source: RealtimeSource
) -> LiveSession:
    sess = str(session_id)
    class_id, teachers = _redis_first(
        "live session",
        lambda: _map(realtime.live_session(sess), _session_from_hash),
        lambda: realtime.load_live_session(sess, source.live_session(session_id)),
        lambda: _session_from_rows(source.live_session(session_id)),
    )
    if class_id is None:
        raise NotFound(f"no live session {session_id}")
    teachers.sort(key=lambda t: (t.joined_at, str(t.teacher_id)))
    return LiveSession(session_id=session_id, class_id=uuid.UUID(class_id), teachers=teachers)


# --- a person's real-time data, for an export (SPEC 9) -------------------------------


def export_realtime(user_id: uuid.UUID, realtime: RealtimeRepository) -> RealtimeExport:
    """What Redis holds about the person, in the API's shapes."""
    raw = realtime.user_data(user_id)
    notifications = [Notification.from_payload(item) for item in raw["notifications"]]
    return RealtimeExport(
        progress=_lessons_from_hash(raw["progress"]),
        notifications=[
            NotificationItem(
                type=n.type,
                post_id=uuid.UUID(n.post_id),
                thread_id=uuid.UUID(n.thread_id),
                actor_id=uuid.UUID(n.actor_id),
                created_at=n.created_at,
                event_id=uuid.UUID(n.event_id),
            )
            for n in notifications
        ],
        leaderboards=[
            RealtimeStanding(
                quiz_id=uuid.UUID(quiz),
                best_score=float(v["best"]),
                best_submitted_at=parse_redis_ts(v.get("at")),
                attempts=int(v.get("attempts") or 0),
            )
            for quiz, v in sorted(raw["leaderboards"].items())
            if "best" in v
        ],
        live_sessions=[
            RealtimeLiveSession(
                session_id=uuid.UUID(session),
                class_id=uuid.UUID(v["class_id"]) if v.get("class_id") else None,
                joined_at=parse_redis_ts(v.get("joined_at")),
                left_at=parse_redis_ts(v.get("left_at")),
                duration_seconds=int(v.get("duration_seconds") or 0),
                polls_launched=[uuid.UUID(p) for p in json.loads(v.get("polls_launched") or "[]")],
                messages_sent=int(v.get("messages_sent") or 0),
            )
            for session, v in sorted(raw["live_sessions"].items())
        ],
        posts=sorted(uuid.UUID(post) for post in raw["posts"]),
    )
