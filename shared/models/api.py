"""Shapes of the HTTP API's requests and responses (they feed the OpenAPI document)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field

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
    status: str = Field(description='"ok" when every dependency is up, else "degraded"')
    dependencies: dict[str, DependencyStatus]
