"""Valid raw events of each type, with overrides, for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(**delta: float) -> str:
    return iso(datetime.now(UTC) - timedelta(**delta))


def new_id() -> str:
    return str(uuid.uuid4())


def lesson_progress(**over: Any) -> dict[str, Any]:
    return {
        "type": "lesson_progress",
        "event_id": new_id(),
        "student_id": new_id(),
        "lesson_id": new_id(),
        "started_at": ago(hours=2),
        "completed_at": None,
        "progress_percent": 40.5,
        "video_watch_time": 300,
        "sections_read": ["intro", "basics"],
        "last_accessed_at": ago(minutes=3),
    } | over


def quiz_attempt(**over: Any) -> dict[str, Any]:
    return {
        "type": "quiz_attempt",
        "event_id": new_id(),
        "student_id": new_id(),
        "quiz_id": new_id(),
        "attempt_id": new_id(),
        "attempt_number": 1,
        "answers": {"q1": "b", "q2": ["a", "c"], "q3": {"x": 1}},
        "score": 7.5,
        "submitted_at": ago(minutes=5),
        "duration_seconds": 420,
        "is_passed": True,
    } | over


def forum_activity(**over: Any) -> dict[str, Any]:
    return {
        "type": "forum_activity",
        "event_id": new_id(),
        "user_id": new_id(),
        "post_id": new_id(),
        "thread_id": new_id(),
        "action_type": "post",
        "content": "How do I factor x^2 - 1?",
        "created_at": ago(minutes=10),
    } | over


def content_activity(**over: Any) -> dict[str, Any]:
    return {
        "type": "content_activity",
        "event_id": new_id(),
        "teacher_id": new_id(),
        "content_id": new_id(),
        "content_type": "lesson",
        "action": "created",
        "timestamp": ago(days=1),
        "title": "Quadratic equations",
    } | over


def feedback(**over: Any) -> dict[str, Any]:
    return {
        "type": "feedback",
        "event_id": new_id(),
        "teacher_id": new_id(),
        "student_id": new_id(),
        "submission_id": new_id(),
        "feedback_text": "Good work; check step 3.",
        "feedback_type": "text",
        "created_at": ago(hours=1),
        "score": 8.0,
    } | over


def live_class_engagement(**over: Any) -> dict[str, Any]:
    return {
        "type": "live_class_engagement",
        "event_id": new_id(),
        "teacher_id": new_id(),
        "class_id": new_id(),
        "session_id": new_id(),
        "joined_at": ago(hours=1),
        "left_at": ago(minutes=5),
        "duration_seconds": 3300,
        "polls_launched": [new_id()],
        "messages_sent": 12,
    } | over


FACTORIES = {
    "lesson_progress": lesson_progress,
    "quiz_attempt": quiz_attempt,
    "forum_activity": forum_activity,
    "content_activity": content_activity,
    "feedback": feedback,
    "live_class_engagement": live_class_engagement,
}


def one_of_each() -> list[dict[str, Any]]:
    return [factory() for factory in FACTORIES.values()]


OBJECT_ID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def principal(user_id: str, *roles: str, name: str = "someone@school.example") -> str:
    """An ``X-MS-CLIENT-PRINCIPAL`` as App Service Authentication sets it for Entra ID."""
    import base64
    import json

    claims = [
        {"typ": OBJECT_ID, "val": user_id},
        {"typ": "name", "val": name},
        *({"typ": "roles", "val": role} for role in roles),
    ]
    document = {
        "auth_typ": "aad",
        "claims": claims,
        "name_typ": "name",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    return base64.b64encode(json.dumps(document).encode()).decode()
