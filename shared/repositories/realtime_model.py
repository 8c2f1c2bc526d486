"""How the real-time layer encodes values for Redis and its scripts.

Timestamps fixed-width (string order is time order), leaderboard members that
encode the tie-break, the notification model, and an event's fields as the
apply script reads them. Pure: nothing here talks to Redis.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.limits import (
    LEADERBOARD_TTL,
    LIVE_SESSION_TTL,
    NOTIFICATIONS_KEPT,
    NOTIFICATIONS_TTL,
    PENDING_NOTIFICATION_TTL,
    POST_AUTHOR_TTL,
    PROGRESS_TTL,
)
from shared.models.events import (
    ActivityEvent,
    ForumActivity,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
)

# Largest epoch microsecond we invert for leaderboard tie-breaks (year 2286).
_TS_CEILING = 9_999_999_999_999_999

# Fixed-width UTC timestamps compare as strings in Lua exactly as in time.
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def redis_ts(moment: datetime) -> str:
    """A timestamp as stored in Redis: fixed width, so string order is time order."""
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def parse_redis_ts(text: str | bytes | None) -> datetime | None:
    if text in (None, b"", ""):
        return None
    raw = text.decode() if isinstance(text, bytes) else text
    return datetime.strptime(raw, _TS_FORMAT).replace(tzinfo=UTC)


def leaderboard_member(student_id: str, submitted_at: datetime) -> str:
    """ZSET member ordering ties: earlier submission first, then lower student id.

    ZREVRANGE returns equal scores in reverse lexical order, so both parts are
    inverted: an earlier time and a smaller id give a larger member.
    """
    micros = int(submitted_at.timestamp() * 1_000_000)
    inverted_id = student_id.translate(INVERT_HEX)
    return f"{_TS_CEILING - micros:016d}|{inverted_id}"


INVERT_HEX = str.maketrans("0123456789abcdef", "fedcba9876543210")
# A student's fields for one lesson in their ``progress`` hash (``{lesson}|{field}``).
LESSON_FIELDS = (
    "started_at",
    "completed_at",
    "progress_percent",
    "video_watch_time",
    "sections_read",
    "last_accessed_at",
)


def student_from_member(member: str) -> str:
    return member.split("|", 1)[1].translate(INVERT_HEX)


@dataclass(frozen=True)
class Notification:
    """A reply to or like of someone's post, as stored and as answered."""

    type: str
    post_id: str
    thread_id: str
    actor_id: str
    created_at: datetime
    event_id: str

    def payload(self) -> str:
        return json.dumps(
            {
                "type": self.type,
                "post_id": self.post_id,
                "thread_id": self.thread_id,
                "actor_id": self.actor_id,
                "created_at": redis_ts(self.created_at),
                "event_id": self.event_id,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def score(self) -> float:
        return self.created_at.timestamp()

    @classmethod
    def from_payload(cls, raw: str | bytes) -> Notification:
        data = json.loads(raw)
        created = parse_redis_ts(data.pop("created_at"))
        assert created is not None
        return cls(created_at=created, **data)

    @classmethod
    def for_event(cls, event: ForumActivity) -> Notification | None:
        """The notification a reply or like gives the target post's author."""
        if event.action_type == "post":
            return None
        target = event.parent_post_id if event.action_type == "reply" else event.post_id
        return cls(
            type=event.action_type,
            post_id=str(target),
            thread_id=str(event.thread_id),
            actor_id=str(event.user_id),
            created_at=event.created_at,
            event_id=str(event.event_id),
        )


def script_fields(event: ActivityEvent) -> dict[str, Any]:
    """The event's fields as the script reads them (times fixed-width, numbers as repr)."""
    fields = {k: v for k, v in _all_fields(event).items() if v is not None}
    fields["users"] = [str(user) for user in event.user_ids]
    return fields


def tombstone_digest(user_id: uuid.UUID | str) -> str:
    """How the tombstone set names an erased user (the script's ``redis.sha1hex``)."""
    return hashlib.sha1(str(user_id).encode(), usedforsecurity=False).hexdigest()


def _strings(event: ActivityEvent, *names: str) -> dict[str, str]:
    """Ids and integers as the script compares them: their exact text."""
    return {name: str(getattr(event, name)) for name in names}


def _times(event: ActivityEvent, *names: str) -> dict[str, str | None]:
    """Timestamps fixed-width (None stays absent)."""
    moments = {name: getattr(event, name) for name in names}
    return {name: redis_ts(moment) if moment else None for name, moment in moments.items()}


def _all_fields(event: ActivityEvent) -> dict[str, Any]:
    if isinstance(event, LessonProgress):
        return (
            _strings(event, "student_id", "lesson_id", "video_watch_time")
            | _times(event, "started_at", "completed_at", "last_accessed_at")
            | {
                "progress_percent": repr(float(event.progress_percent)),
                "sections_read": list(event.sections_read),
                "accessed_epoch": event.last_accessed_at.timestamp(),
                "ttl": PROGRESS_TTL,
            }
        )
    if isinstance(event, QuizAttempt):
        return (
            _strings(event, "student_id", "quiz_id", "attempt_id")
            | _times(event, "submitted_at")
            | {
                "score": repr(float(event.score)),
                "member": leaderboard_member(str(event.student_id), event.submitted_at),
                "ttl": LEADERBOARD_TTL,
            }
        )
    if isinstance(event, ForumActivity):
        notification = Notification.for_event(event)
        return _strings(event, "user_id", "post_id", "thread_id", "action_type") | {
            "target": notification.post_id if notification else None,
            "payload": notification.payload() if notification else None,
            "score": notification.score() if notification else None,
            "keep": NOTIFICATIONS_KEPT,
            "notif_ttl": NOTIFICATIONS_TTL,
            "author_ttl": POST_AUTHOR_TTL,
            "pending_ttl": PENDING_NOTIFICATION_TTL,
        }
    if isinstance(event, LiveClassEngagement):
        names = ("teacher_id", "class_id", "event_id", "session_id", "duration_seconds")
        return (
            _strings(event, *names, "messages_sent")
            | _times(event, "joined_at", "left_at")
            | {"polls_launched": sorted(str(p) for p in event.polls_launched)}
            | {"ttl": LIVE_SESSION_TTL}
        )
    return {}  # content_activity and feedback only count


def bucket_start(received_at: datetime, bucket_seconds: int) -> int:
    epoch = int(received_at.timestamp())
    return epoch - epoch % bucket_seconds
