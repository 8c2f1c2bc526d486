"""A Python client for the activity tracking API (``POST /api/v1/events``).

    from activity_client import ActivityClient

    with ActivityClient("http://localhost:7071", key=KEY) as client:
        event_id = client.quiz_attempt(student_id=..., quiz_id=..., ...)

Events are batched, sent from background threads, retried with the same
event ids on transient failures, and flushed on close and at interpreter exit.
"""

from activity_client.client import EVENT_TYPES, ActivityClient, events_url
from activity_client.results import (
    BatchResult,
    BufferFull,
    ClientClosed,
    EventTooLarge,
    FieldError,
    Rejection,
    Stats,
)

__all__ = [
    "EVENT_TYPES",
    "ActivityClient",
    "BatchResult",
    "BufferFull",
    "ClientClosed",
    "EventTooLarge",
    "FieldError",
    "Rejection",
    "Stats",
    "events_url",
]
__version__ = "0.1.0"
