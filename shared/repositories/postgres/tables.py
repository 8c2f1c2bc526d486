"""Where each event type is stored, and how the merged tables fold events.

Every type keeps its events in a history table (one row per unique event) or
folds them into a merged table (one row per key). The merge rules (min, max,
union, latest) are associative, commutative and idempotent, so a merged row
does not depend on arrival order or redeliveries; ``merge_rows`` is the same
fold in Python (for tests and benchmarks). Table and column names come from the
pydantic models.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shared.models.events import (
    MODEL_BY_TYPE,
    ActivityEvent,
    ContentActivity,
    Feedback,
    ForumActivity,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
)
from shared.repositories.postgres.pool import Row

TYPE_BY_MODEL: Mapping[type[ActivityEvent], str] = MappingProxyType(
    {model: name for name, model in MODEL_BY_TYPE.items()}
)


def event_columns(model: type[ActivityEvent]) -> tuple[str, ...]:
    """The model's fields as table columns (all but the ``type`` discriminator)."""
    return tuple(name for name in model.model_fields if name != "type")


# One row per unique event, for every type that keeps its events.
HISTORY_TABLES: Mapping[type[ActivityEvent], str] = MappingProxyType(
    {
        LessonProgress: "lesson_progress_events",
        QuizAttempt: "quiz_attempts",
        ForumActivity: "forum_activity",
        ContentActivity: "content_activity",
        Feedback: "feedback",
    }
)

# History tables with a natural key besides event_id. A new event whose key is
# already stored is a duplicate (a resend under a fresh event_id): the first
# stored event wins and the duplicate is dropped from the ledger as well.
NATURAL_KEYS: Mapping[type[ActivityEvent], tuple[str, ...]] = MappingProxyType(
    {QuizAttempt: ("attempt_id",)}
)


class Merge(enum.Enum):
    """How a merged column combines two values for the same key."""

    MIN = "min"  # the smallest non-null value (LEAST ignores nulls)
    MAX = "max"  # the largest non-null value (GREATEST ignores nulls)
    UNION = "union"  # distinct union of arrays, sorted
    LATEST = "latest"  # from the event with the greatest (latest_by, event_id)


@dataclass(frozen=True)
class MergedTable:
    """A table holding one merged row per key, folded from every event."""

    model: type[ActivityEvent]
    table: str
    key: tuple[str, ...]
    rules: Mapping[str, Merge]
    # Orders the events for LATEST columns; event_id breaks ties so the
    # order is total and the winner does not depend on arrival order.
    latest_by: str

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + tuple(self.rules)


LESSON_PROGRESS = MergedTable(
    model=LessonProgress,
    table="lesson_progress",
    key=("student_id", "lesson_id"),
    rules=MappingProxyType(
        {
            "started_at": Merge.MIN,
            "completed_at": Merge.MIN,
            "progress_percent": Merge.MAX,
            "video_watch_time": Merge.MAX,
            "sections_read": Merge.UNION,
            "last_accessed_at": Merge.MAX,
            "event_id": Merge.LATEST,
        }
    ),
    latest_by="last_accessed_at",
)

LIVE_CLASS_ENGAGEMENT = MergedTable(
    model=LiveClassEngagement,
    table="live_class_engagement",
    key=("session_id", "teacher_id"),
    rules=MappingProxyType(
        {
            "class_id": Merge.LATEST,
            "joined_at": Merge.MIN,
            "left_at": Merge.MAX,
            "duration_seconds": Merge.MAX,
            "polls_launched": Merge.UNION,
            "messages_sent": Merge.MAX,
            "event_id": Merge.LATEST,
        }
    ),
    # duration_seconds only grows during a session: the longest is the latest snapshot.
    latest_by="duration_seconds",
)

MERGED_TABLES: tuple[MergedTable, ...] = (LESSON_PROGRESS, LIVE_CLASS_ENGAGEMENT)
MERGED_BY_MODEL: Mapping[type[ActivityEvent], MergedTable] = MappingProxyType(
    {spec.model: spec for spec in MERGED_TABLES}
)


def _pick(rule: Merge, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b) if rule is Merge.MIN else max(a, b)


def merge_rows(spec: MergedTable, rows: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], Row]:
    """Fold event rows into one row per key by ``spec``'s rules, as the database does."""
    merged: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[name] for name in spec.key)
        current = merged.get(key)
        if current is None:
            merged[key] = {
                name: sorted(set(row[name])) if spec.rules.get(name) is Merge.UNION else row[name]
                for name in spec.columns
            }
            continue
        newer = (row[spec.latest_by], row["event_id"]) > (
            current[spec.latest_by],
            current["event_id"],
        )
        combined = dict(current)
        for name, rule in spec.rules.items():
            if rule is Merge.UNION:
                combined[name] = sorted(set(current[name]) | set(row[name]))
            elif rule is Merge.LATEST:
                combined[name] = row[name] if newer else current[name]
            else:
                combined[name] = _pick(rule, current[name], row[name])
        merged[key] = combined
    return merged
