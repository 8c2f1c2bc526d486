"""Real-time data in the API's shapes, and events applied to Redis at ingest.

The views (``shared.services.realtime_views``) read each one from a Redis hash
or sorted set, or, when Redis lacks it, from PostgreSQL's rows; the two
conversions of each view here give the same answer for the same events.
``export_realtime`` is what Redis holds about a person (SPEC 9).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from redis.exceptions import RedisError

from shared.models.api import (
    LeaderboardEntry,
    LessonState,
    LessonStudent,
    LiveTeacher,
    NotificationItem,
)
from shared.models.events import ActivityEvent
from shared.models.privacy import RealtimeExport, RealtimeLiveSession, RealtimeStanding
from shared.repositories.realtime import (
    Notification,
    RealtimeRepository,
    leaderboard_member,
    parse_redis_ts,
)

log = logging.getLogger(__name__)


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


def lessons_from_hash(data: dict[str, str]) -> list[LessonState]:
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


def lessons_from_rows(rows: Iterable[dict[str, Any]]) -> list[LessonState]:
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


# --- a lesson's students -------------------------------------------------------------


def lesson_student(student: str, v: dict[str, Any]) -> LessonStudent:
    return LessonStudent(
        student_id=uuid.UUID(student),
        started_at=parse_redis_ts(v["started_at"]),
        completed_at=parse_redis_ts(v.get("completed_at")),
        progress_percent=float(v["progress_percent"]),
        video_watch_time=int(v["video_watch_time"]),
        sections_read=sorted(json.loads(v.get("sections_read") or "[]")),
        last_accessed_at=parse_redis_ts(v["last_accessed_at"]),
    )


def lesson_students_from_rows(rows: list[dict[str, Any]]) -> list[LessonStudent]:
    return [
        LessonStudent(student_id=row["student_id"], **state.model_dump(exclude={"lesson_id"}))
        for row, state in zip(rows, lessons_from_rows(rows), strict=True)
    ]


# --- quiz leaderboard --------------------------------------------------------------


def ranked_from_attempts(
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


def leaderboard_entry(rank: int, row: dict[str, Any], shown: bool) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank=rank,
        student_id=uuid.UUID(row["student_id"]) if shown else None,
        best_score=float(row["best_score"]),
        attempts=int(row["attempts"]),
    )


# --- notifications ---------------------------------------------------------------------


def notification_item(item: Notification) -> NotificationItem:
    """A notification as the API answers it."""
    return NotificationItem(
        type=item.type,
        post_id=uuid.UUID(item.post_id),
        thread_id=uuid.UUID(item.thread_id),
        actor_id=uuid.UUID(item.actor_id),
        created_at=item.created_at,
        event_id=uuid.UUID(item.event_id),
    )


def notification_from_row(row: dict[str, Any]) -> Notification:
    return Notification(
        type=row["type"],
        post_id=str(row["post_id"]),
        thread_id=str(row["thread_id"]),
        actor_id=str(row["actor_id"]),
        created_at=_utc(row["created_at"]),
        event_id=str(row["event_id"]),
    )


# --- live class sessions ---------------------------------------------------------------


def teachers_from_hash(data: dict[str, str]) -> list[LiveTeacher]:
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


def session_from_hash(data: dict[str, str]) -> tuple[str | None, list[LiveTeacher]]:
    """The session's class (as PostgreSQL answers it: the first teacher to join's,
    by joined_at then teacher_id) and its teachers."""
    teachers = teachers_from_hash(data)
    owners = _by_owner(data)
    first = min(teachers, key=lambda t: (t.joined_at, str(t.teacher_id)), default=None)
    # A hash written before class_id was kept per teacher has the session's only.
    class_id = owners[str(first.teacher_id)].get("class_id") if first else None
    return class_id or data.get("class_id"), teachers


def session_from_rows(rows: list[dict[str, Any]]) -> tuple[str | None, list[LiveTeacher]]:
    return (str(rows[0]["class_id"]) if rows else None), _teachers_from_rows(rows)


# --- a person's real-time data, for an export (SPEC 9) -------------------------------


def export_realtime(user_id: uuid.UUID, realtime: RealtimeRepository) -> RealtimeExport:
    """What Redis holds about the person, in the API's shapes."""
    raw = realtime.user_data(user_id)
    notifications = [Notification.from_payload(item) for item in raw["notifications"]]
    return RealtimeExport(
        progress=lessons_from_hash(raw["progress"]),
        notifications=[notification_item(n) for n in notifications],
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
