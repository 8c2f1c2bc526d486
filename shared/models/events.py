"""The six activity events of the seed design, as pydantic v2 models.

These models are the one source of truth: they validate requests, generate the
OpenAPI document, and name the columns the PostgreSQL repository writes.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

from shared import limits

# Namespace for server-assigned event ids: an event sent without ``event_id``
# gets uuid5(namespace, canonical content), so a client that retries the same
# request gets the same ids and the retry is recognised as a duplicate.
# Validation context flag for events read back from our own queues.
TRUSTED = "trusted"

EVENT_ID_NAMESPACE = uuid.UUID("6f1c1f6e-3b8a-4c55-9a57-2f1d3c0e8b11")


class FieldRuleError(ValueError):
    """A rule across fields, blamed on the one field the client must fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _require_iso_string(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string with a time zone")
    return value


def _check_time_range(value: datetime, info: ValidationInfo) -> datetime:
    value = value.astimezone(UTC)
    if info.context and info.context.get(TRUSTED):
        # Validated at ingest already; a queued event must not turn invalid
        # because the clock moved on or a limit changed while it waited.
        return value
    if value < limits.MIN_EVENT_TIME:
        raise ValueError(f"must not be before {limits.MIN_EVENT_TIME.isoformat()}")
    if value > datetime.now(UTC) + limits.MAX_FUTURE_SKEW:
        minutes = int(limits.MAX_FUTURE_SKEW.total_seconds() // 60)
        raise ValueError(f"must not be more than {minutes} minutes in the future")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_require_iso_string),
    AfterValidator(_check_time_range),
    Field(description="ISO 8601 timestamp with a time zone (stored in UTC)"),
]


def _storable(value: str) -> str:
    """Text every store can hold: PostgreSQL refuses NUL, UTF-8 refuses lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain unpaired surrogate characters") from None
    return value


# Unicode's control characters (category Cc): C0, DEL and C1.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _name(value: str) -> str:
    """An identifier-like string (section, question id): no control characters at all."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return _storable(value)


def _storable_json(value: Any) -> None:
    if isinstance(value, str):
        _storable(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(str(key))
            _storable_json(item)
    elif isinstance(value, list):
        for item in value:
            _storable_json(item)


_T = TypeVar("_T")


class cached(Generic[_T]):
    """``functools.cached_property`` without Python 3.11's class-wide lock.

    3.11's holds one lock per property for every instance, so threads working
    on different events wait on each other (seen as lock waits in the host's
    profile); 3.12 dropped it. Computing a value twice in a race is harmless
    here: the values are pure functions of a frozen event.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> _T:
        if instance is None:
            return self  # type: ignore[return-value]
        value: _T = self.compute(instance)
        instance.__dict__[self.name] = value
        return value


Id = Annotated[uuid.UUID, Field(description="UUID")]
Seconds = Annotated[StrictInt, Field(ge=0, le=limits.MAX_DURATION_SECONDS)]
Score = Annotated[float, Field(ge=0, le=limits.MAX_SCORE, allow_inf_nan=False, strict=True)]
SectionName = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=limits.MAX_SECTION_NAME_CHARS),
    AfterValidator(_name),
]


def _text(max_length: int) -> Any:
    return Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=max_length),
        AfterValidator(_storable),
    ]


def _answer_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_answer_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_answer_depth(v) for v in value), default=0)
    return 0


def _check_answers(value: dict[str, Any]) -> dict[str, Any]:
    for question_id, answer in value.items():
        try:
            _storable_json(answer)
        except ValueError as exc:
            raise ValueError(f"answer to {question_id!r} {exc}") from None
        if _answer_depth(answer) > limits.MAX_ANSWERS_DEPTH:
            raise ValueError(
                f"answer to {question_id!r} is nested deeper than {limits.MAX_ANSWERS_DEPTH} levels"
            )
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    if size > limits.MAX_ANSWERS_JSON_CHARS:
        raise ValueError(
            f"answers serialize to {size} characters, over the limit of "
            f"{limits.MAX_ANSWERS_JSON_CHARS}"
        )
    return value


QuestionId = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=limits.MAX_QUESTION_ID_CHARS),
    AfterValidator(_name),
]
Answers = Annotated[
    dict[QuestionId, Any],
    Field(
        max_length=limits.MAX_ANSWERS,
        description=(
            "question_id -> answer (any JSON value, nested at most "
            f"{limits.MAX_ANSWERS_DEPTH} levels; at most {limits.MAX_ANSWERS_JSON_CHARS} "
            "characters in all)"
        ),
    ),
    AfterValidator(_check_answers),
]


class ActivityEvent(BaseModel):
    """Fields every event has."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached,))

    # The field holding the event time and the one naming the acting user.
    time_field: ClassVar[str]
    actor_field: ClassVar[str]
    # Other users the event is about (erasure and export find them too).
    subject_fields: ClassVar[tuple[str, ...]] = ()

    event_id: Id | None = Field(
        default=None,
        description="Client-chosen UUID so retries are recognised; assigned when absent.",
    )

    @property
    def event_type(self) -> str:
        value: str = getattr(self, "type")  # noqa: B009 - each subclass declares its Literal
        return value

    @property
    def occurred_at(self) -> datetime:
        value: datetime = getattr(self, self.time_field)
        return value

    @property
    def actor_id(self) -> uuid.UUID:
        value: uuid.UUID = getattr(self, self.actor_field)
        return value

    @property
    def user_ids(self) -> tuple[uuid.UUID, ...]:
        """Every user the event names, the actor first."""
        ids = [self.actor_id]
        for name in self.subject_fields:
            value = getattr(self, name)
            if value is not None and value not in ids:
                ids.append(value)
        return tuple(ids)

    @cached
    def canonical(self) -> str:
        """The event's content without its id, in one canonical JSON form."""
        return json.dumps(
            self.model_dump(mode="json", exclude={"event_id"}),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @cached
    def content_digest(self) -> str:
        """A fingerprint of the content: two versions of one event_id differ in it (SPEC 13)."""
        return hashlib.sha256(self.canonical.encode()).hexdigest()[:32]

    def with_event_id(self) -> ActivityEvent:
        """This event with its ``event_id`` set (deterministic when absent)."""
        if self.event_id is not None:
            return self
        return self.model_copy(update={"event_id": uuid.uuid5(EVENT_ID_NAMESPACE, self.canonical)})


class LessonProgress(ActivityEvent):
    """A student's progress through a lesson."""

    time_field: ClassVar[str] = "last_accessed_at"
    actor_field: ClassVar[str] = "student_id"

    type: Literal["lesson_progress"]
    student_id: Id
    lesson_id: Id
    started_at: Timestamp
    completed_at: Timestamp | None = None
    progress_percent: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False, strict=True)]
    video_watch_time: Seconds = Field(description="seconds of video watched")
    sections_read: Annotated[list[SectionName], Field(max_length=limits.MAX_SECTIONS_READ)]
    last_accessed_at: Timestamp

    @model_validator(mode="after")
    def _completed_after_started(self) -> LessonProgress:
        if self.completed_at is not None and self.completed_at < self.started_at:
            raise FieldRuleError("completed_at", "must not be before started_at")
        return self


class QuizAttempt(ActivityEvent):
    """One submitted attempt at a quiz."""

    time_field: ClassVar[str] = "submitted_at"
    actor_field: ClassVar[str] = "student_id"

    type: Literal["quiz_attempt"]
    student_id: Id
    quiz_id: Id
    attempt_id: Id
    attempt_number: Annotated[StrictInt, Field(ge=1, le=limits.MAX_ATTEMPT_NUMBER)]
    answers: Answers
    score: Score
    submitted_at: Timestamp
    duration_seconds: Seconds
    is_passed: StrictBool


class ForumActivity(ActivityEvent):
    """A forum post, reply or like."""

    time_field: ClassVar[str] = "created_at"
    actor_field: ClassVar[str] = "user_id"

    type: Literal["forum_activity"]
    user_id: Id
    post_id: Id = Field(description="the new post or reply, or the post liked")
    thread_id: Id
    action_type: Literal["post", "reply", "like"]
    content: _text(limits.MAX_CONTENT_CHARS) | None = Field(  # type: ignore[valid-type]
        default=None, description="required for post and reply, absent for like"
    )
    created_at: Timestamp
    parent_post_id: Id | None = Field(default=None, description="required for reply only")

    @model_validator(mode="after")
    def _fields_for_action(self) -> ForumActivity:
        if self.action_type == "like":
            if self.content is not None:
                raise FieldRuleError("content", "must be absent for a like")
        elif self.content is None:
            raise FieldRuleError("content", f"is required for a {self.action_type}")
        if self.action_type == "reply" and self.parent_post_id is None:
            raise FieldRuleError("parent_post_id", "is required for a reply")
        if self.action_type != "reply" and self.parent_post_id is not None:
            raise FieldRuleError("parent_post_id", f"must be absent for a {self.action_type}")
        return self


class ContentActivity(ActivityEvent):
    """A teacher creating or updating a lesson, quiz or assignment."""

    time_field: ClassVar[str] = "timestamp"
    actor_field: ClassVar[str] = "teacher_id"

    type: Literal["content_activity"]
    teacher_id: Id
    content_id: Id
    content_type: Literal["lesson", "quiz", "assignment"]
    action: Literal["created", "updated"]
    timestamp: Timestamp
    title: _text(limits.MAX_TITLE_CHARS)  # type: ignore[valid-type]
    changes_summary: _text(limits.MAX_CHANGES_SUMMARY_CHARS) | None = Field(  # type: ignore[valid-type]
        default=None, description="required for updated"
    )

    @model_validator(mode="after")
    def _summary_for_update(self) -> ContentActivity:
        if self.action == "updated" and self.changes_summary is None:
            raise FieldRuleError("changes_summary", "is required when action is updated")
        return self


class Feedback(ActivityEvent):
    """Feedback a teacher gave on a student's submission."""

    time_field: ClassVar[str] = "created_at"
    actor_field: ClassVar[str] = "teacher_id"
    subject_fields: ClassVar[tuple[str, ...]] = ("student_id",)

    type: Literal["feedback"]
    teacher_id: Id
    student_id: Id
    submission_id: Id
    feedback_text: _text(limits.MAX_FEEDBACK_TEXT_CHARS)  # type: ignore[valid-type]
    feedback_type: Literal["text", "rubric", "audio"]
    created_at: Timestamp
    score: Score | None = None


class LiveClassEngagement(ActivityEvent):
    """A teacher's engagement in one live class session."""

    time_field: ClassVar[str] = "joined_at"
    actor_field: ClassVar[str] = "teacher_id"

    type: Literal["live_class_engagement"]
    teacher_id: Id
    class_id: Id
    session_id: Id
    joined_at: Timestamp
    left_at: Timestamp | None = None
    duration_seconds: Seconds
    polls_launched: Annotated[list[Id], Field(max_length=limits.MAX_POLLS_LAUNCHED)]
    messages_sent: Annotated[StrictInt, Field(ge=0, le=limits.MAX_MESSAGES_SENT)]

    @model_validator(mode="after")
    def _left_after_joined(self) -> LiveClassEngagement:
        if self.left_at is not None and self.left_at < self.joined_at:
            raise FieldRuleError("left_at", "must not be before joined_at")
        return self


EVENT_MODELS: tuple[type[ActivityEvent], ...] = (
    LessonProgress,
    QuizAttempt,
    ForumActivity,
    ContentActivity,
    Feedback,
    LiveClassEngagement,
)
MODEL_BY_TYPE: dict[str, type[ActivityEvent]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in EVENT_MODELS
}
EVENT_TYPES: tuple[str, ...] = tuple(MODEL_BY_TYPE)

Event = Annotated[
    LessonProgress | QuizAttempt | ForumActivity | ContentActivity | Feedback | LiveClassEngagement,
    Field(discriminator="type"),
]
event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
