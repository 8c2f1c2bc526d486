"""A roll-up row: one counter of one closed bucket, as stored in activity_rollups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The metrics the counters keep (SPEC section 7), by dimension.
ROLLUP_METRICS = {
    "events": "event type",
    "lesson_active_students": "lesson_id",
    "forum_thread_actions": "thread_id",
    "quiz_attempts": "quiz_id",
}


@dataclass(frozen=True)
class RollupRow:
    bucket_start: datetime
    bucket_seconds: int
    metric: str
    dimension: str
    value: int
