"""Shapes of the HTTP API's requests and responses (they feed the OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from shared import limits
from shared.models.events import Event


class EventBatch(BaseModel):
    """Several events in one request."""

    events: Annotated[list[Event], Field(min_length=1, max_length=limits.MAX_EVENTS_PER_REQUEST)]


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending field, e.g. sections_read.3")
    message: str


class Rejection(BaseModel):
    index: int = Field(description="position of the event in the request (0 for a single event)")
    errors: list[FieldError]


class IngestResponse(BaseModel):
    accepted: int
    event_ids: list[uuid.UUID] = Field(description="ids of the accepted events, in request order")
    rejected: list[Rejection]


class ErrorResponse(BaseModel):
    error: str


class DependencyStatus(BaseModel):
    status: str = Field(description='"up" or "down"')
    latency_ms: float | None = None
    error: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        description='"ok": every dependency up; "degraded": one is down but events are '
        'accepted and views answer; "down": events cannot be accepted (HTTP 503)'
    )
    dependencies: dict[str, DependencyStatus]
    poison_queues: dict[str, int] | None = Field(
        default=None,
        description="messages in each <queue>-poison: they need a person "
        "(`make replay-poison QUEUE=<queue>` once the cause is fixed); null when storage is down",
    )


# --- real-time read API (SPEC section 7) ---------------------------------------------


class LessonState(BaseModel):
    lesson_id: uuid.UUID
    started_at: datetime
    completed_at: datetime | None
    progress_percent: float
    video_watch_time: int
    sections_read: list[str]
    last_accessed_at: datetime


class StudentProgress(BaseModel):
    student_id: uuid.UUID
    lessons: list[LessonState] = Field(description="most recently accessed first")


class LessonStudent(BaseModel):
    student_id: uuid.UUID
    started_at: datetime
    completed_at: datetime | None
    progress_percent: float
    video_watch_time: int
    sections_read: list[str]
    last_accessed_at: datetime


class LessonStudents(BaseModel):
    """A lesson's live view: each student's progress (not the lesson_progress event)."""

    lesson_id: uuid.UUID
    students: list[LessonStudent] = Field(description="most recently active first")


class LeaderboardEntry(BaseModel):
    rank: int
    student_id: uuid.UUID | None = Field(
        description="null when a student reads the board: other students' ids are hidden"
    )
    best_score: float
    attempts: int


class Leaderboard(BaseModel):
    quiz_id: uuid.UUID
    entries: list[LeaderboardEntry] = Field(
        description="by best score, ties by the earlier submission of that score, then student_id"
    )
    viewer: LeaderboardEntry | None = Field(
        default=None,
        description="only when a student reads the board: their own entry, also when it is "
        "outside the top `limit`",
    )

    @model_serializer(mode="wrap")
    def _viewer_only_for_students(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Everyone else gets exactly SPEC 7's shape.
        data = handler(self)
        if isinstance(data, dict) and data.get("viewer") is None:
            data.pop("viewer", None)
        return data


class NotificationItem(BaseModel):
    type: Literal["reply", "like"]
    post_id: uuid.UUID = Field(description="the recipient's post that was replied to or liked")
    thread_id: uuid.UUID
    actor_id: uuid.UUID
    created_at: datetime
    event_id: uuid.UUID


class Notifications(BaseModel):
    user_id: uuid.UUID
    notifications: list[NotificationItem] = Field(description="newest first")


class LiveTeacher(BaseModel):
    teacher_id: uuid.UUID
    joined_at: datetime
    left_at: datetime | None
    duration_seconds: int
    polls_launched: list[uuid.UUID]
    messages_sent: int
    active: bool = Field(description="true while left_at is null")


class LiveSession(BaseModel):
    session_id: uuid.UUID
    class_id: uuid.UUID
    teachers: list[LiveTeacher]
