"""The event contract of SPEC section 3, rule by rule."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from shared import limits
from shared.models.events import EVENT_TYPES, MODEL_BY_TYPE, event_adapter
from shared.services.ingest import field_errors
from tests import factories as f


def errors_of(raw: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        event_adapter.validate_python(raw)
    return {e.field: e.message for e in field_errors(info.value)}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_accepts_a_valid_event(event_type: str) -> None:
    raw = f.FACTORIES[event_type]()
    event = event_adapter.validate_python(raw)
    assert type(event) is MODEL_BY_TYPE[event_type]
    assert event.model_dump(mode="json")["event_id"] == raw["event_id"]


def test_seed_fields_are_all_captured() -> None:
    seed = {
        "lesson_progress": "student_id lesson_id started_at completed_at progress_percent "
        "video_watch_time sections_read last_accessed_at",
        "quiz_attempt": "student_id quiz_id attempt_id attempt_number answers score "
        "submitted_at duration_seconds is_passed",
        "forum_activity": "user_id post_id thread_id action_type content created_at parent_post_id",
        "content_activity": "teacher_id content_id content_type action timestamp title "
        "changes_summary",
        "feedback": "teacher_id student_id submission_id feedback_text feedback_type "
        "created_at score",
        "live_class_engagement": "teacher_id class_id session_id joined_at left_at "
        "duration_seconds polls_launched messages_sent",
    }
    for event_type, fields in seed.items():
        model_fields = set(MODEL_BY_TYPE[event_type].model_fields) - {"type", "event_id"}
        assert model_fields == set(fields.split()), event_type


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        (f.lesson_progress(started_at="2026-01-01T10:00:00"), "started_at", "timezone"),
        (f.lesson_progress(started_at=1700000000), "started_at", "ISO 8601"),
        (f.lesson_progress(progress_percent=100.5), "progress_percent", "less than or equal"),
        (f.lesson_progress(progress_percent=-1), "progress_percent", "greater than or equal"),
        (f.lesson_progress(progress_percent="50"), "progress_percent", "valid number"),
        (f.lesson_progress(video_watch_time=-1), "video_watch_time", "greater than or equal"),
        (f.lesson_progress(video_watch_time=1.5), "video_watch_time", "integer"),
        (f.lesson_progress(sections_read="intro"), "sections_read", "list"),
        (f.lesson_progress(sections_read=[""]), "sections_read.0", "at least 1"),
        (f.lesson_progress(student_id="42"), "student_id", "UUID"),
        (
            f.lesson_progress(
                started_at="2026-01-02T00:00:00Z", completed_at="2026-01-01T00:00:00Z"
            ),
            "completed_at",
            "before started_at",
        ),
        (f.lesson_progress(last_accessed_at="2999-01-01T00:00:00Z"), "last_accessed_at", "future"),
        (f.lesson_progress(started_at="1999-12-31T00:00:00Z"), "started_at", "before"),
        (f.lesson_progress(colour="red"), "colour", "not permitted"),
        (f.quiz_attempt(attempt_number=0), "attempt_number", "greater than or equal"),
        (f.quiz_attempt(score=-0.5), "score", "greater than or equal"),
        (f.quiz_attempt(is_passed="yes"), "is_passed", "boolean"),
        (f.quiz_attempt(is_passed=1), "is_passed", "boolean"),
        (f.quiz_attempt(answers=[1, 2]), "answers", "dictionary"),
        (f.quiz_attempt(answers={"q1": [[[[["deep"]]]]]}), "answers", "nested deeper"),
        (f.quiz_attempt(answers={"q1": "x" * 70_000}), "answers", "characters"),
        (
            f.quiz_attempt(answers={f"q{i}": 1 for i in range(limits.MAX_ANSWERS + 1)}),
            "answers",
            "at most",
        ),
        (f.quiz_attempt(duration_seconds=-3), "duration_seconds", "greater than or equal"),
        (f.forum_activity(action_type="share"), "action_type", "'post', 'reply' or 'like'"),
        (f.forum_activity(content=None), "content", "required for a post"),
        (f.forum_activity(action_type="like"), "content", "absent for a like"),
        (f.forum_activity(action_type="reply"), "parent_post_id", "required for a reply"),
        (f.forum_activity(parent_post_id=f.new_id()), "parent_post_id", "absent for a post"),
        (f.forum_activity(content="x" * (limits.MAX_CONTENT_CHARS + 1)), "content", "at most"),
        (f.content_activity(content_type="video"), "content_type", "lesson"),
        (f.content_activity(action="updated"), "changes_summary", "required"),
        (f.content_activity(title="t" * (limits.MAX_TITLE_CHARS + 1)), "title", "at most"),
        (f.feedback(feedback_type="video"), "feedback_type", "'text', 'rubric' or 'audio'"),
        (f.feedback(feedback_text=""), "feedback_text", "at least 1"),
        (
            f.feedback(feedback_text="x" * (limits.MAX_FEEDBACK_TEXT_CHARS + 1)),
            "feedback_text",
            "at most",
        ),
        (
            f.live_class_engagement(
                joined_at="2026-01-02T00:00:00Z", left_at="2026-01-01T00:00:00Z"
            ),
            "left_at",
            "before joined_at",
        ),
        (f.live_class_engagement(polls_launched=["p1"]), "polls_launched.0", "UUID"),
        (f.live_class_engagement(messages_sent=-1), "messages_sent", "greater than or equal"),
        (f.forum_activity(content="a\x00b"), "content", "NUL"),
        (f.feedback(feedback_text="\ud800"), "feedback_text", "unicode"),
        (f.lesson_progress(sections_read=["a\x01"]), "sections_read.0", "control characters"),
        (f.quiz_attempt(answers={"q1": ["ok", "\x00"]}), "answers", "NUL"),
        (f.quiz_attempt(answers={"q1": {"\ud800": 1}}), "answers", "surrogate"),
        ({**f.feedback(), "type": "gossip"}, "type", "does not match"),
        ({"student_id": f.new_id()}, "type", "discriminator"),
    ],
)
def test_rules_reject_naming_the_field(raw: Any, field: str, fragment: str) -> None:
    errors = errors_of(raw)
    assert field in errors, errors
    assert fragment.lower() in errors[field].lower(), errors[field]


def test_required_fields_are_named() -> None:
    errors = errors_of({"type": "feedback"})
    assert set(errors) == {
        "teacher_id",
        "student_id",
        "submission_id",
        "feedback_text",
        "feedback_type",
        "created_at",
    }


def test_timestamps_are_normalised_to_utc() -> None:
    event = event_adapter.validate_python(
        f.lesson_progress(
            started_at="2026-01-01T10:00:00+02:00", last_accessed_at="2026-01-01T09:00:00Z"
        )
    )
    assert event.model_dump(mode="json")["started_at"] == "2026-01-01T08:00:00Z"


def test_optional_fields_may_be_absent() -> None:
    for raw, name in (
        (f.lesson_progress(), "completed_at"),
        (f.feedback(), "score"),
        (f.live_class_engagement(), "left_at"),
        (f.lesson_progress(), "event_id"),
    ):
        raw.pop(name)
        event_adapter.validate_python(raw)


def test_missing_event_id_is_assigned_deterministically() -> None:
    raw = f.quiz_attempt()
    raw.pop("event_id")
    first = event_adapter.validate_python(raw).with_event_id()
    again = event_adapter.validate_python(dict(raw)).with_event_id()
    other = event_adapter.validate_python(raw | {"score": 1.0}).with_event_id()
    assert isinstance(first.event_id, uuid.UUID)
    assert first.event_id == again.event_id
    assert first.event_id != other.event_id


def test_client_event_id_is_kept() -> None:
    raw = f.feedback()
    assert str(event_adapter.validate_python(raw).with_event_id().event_id) == raw["event_id"]


def test_actor_time_and_users_per_type() -> None:
    fb = event_adapter.validate_python(f.feedback())
    assert fb.user_ids == (fb.teacher_id, fb.student_id)  # type: ignore[union-attr]
    assert fb.occurred_at == fb.created_at  # type: ignore[union-attr]
    lp = event_adapter.validate_python(f.lesson_progress())
    assert lp.actor_id == lp.student_id  # type: ignore[union-attr]
    assert lp.occurred_at == lp.last_accessed_at  # type: ignore[union-attr]
