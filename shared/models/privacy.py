"""Response shapes of the privacy operations (SPEC 9): erasure, export, disclosures."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.models.api import LessonState, NotificationItem


class ErasedCounts(BaseModel):
    postgres: int
    archive: int
    realtime: int


class ErasureResponse(BaseModel):
    user_id: uuid.UUID
    erased: ErasedCounts
    erased_at: datetime


class RealtimeStanding(BaseModel):
    quiz_id: uuid.UUID
    best_score: float
    best_submitted_at: datetime | None
    attempts: int


class RealtimeLiveSession(BaseModel):
    session_id: uuid.UUID
    class_id: uuid.UUID | None
    joined_at: datetime | None
    left_at: datetime | None
    duration_seconds: int
    polls_launched: list[uuid.UUID]
    messages_sent: int


class RealtimeExport(BaseModel):
    """What Redis holds about a person, in the API's own shapes (not Redis's)."""

    progress: list[LessonState] = Field(description="as GET /v1/students/{id}/progress")
    notifications: list[NotificationItem] = Field(description="their own, newest first")
    leaderboards: list[RealtimeStanding] = Field(description="their standing in each quiz")
    live_sessions: list[RealtimeLiveSession] = Field(description="as a teacher in each session")
    posts: list[uuid.UUID] = Field(description="posts Redis knows they wrote (for notifications)")


class ExportPage(BaseModel):
    user_id: uuid.UUID
    postgres: dict[str, list[dict[str, Any]]]
    archive: list[dict[str, Any]]
    realtime: RealtimeExport | None = Field(description="on the last page only")
    next_cursor: str | None


class Disclosure(BaseModel):
    accessor: str = Field(
        description="who: the principal (name, id, roles) or the key level and a fingerprint"
    )
    action: str
    resource: str
    accessed_at: datetime
    outcome: Literal["disclosed", "refused"] = "disclosed"
    rule: str | None = Field(default=None, description="the access rule that refused it")


class Disclosures(BaseModel):
    user_id: uuid.UUID
    disclosures: list[Disclosure]
    next_cursor: str | None
