"""Ingest: parse a request body, validate each event, queue the valid ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from shared import limits
from shared.errors import InvalidInput, TooLarge, UnsupportedMediaType
from shared.models.api import FieldError, IngestResponse, Rejection
from shared.models.events import ActivityEvent, FieldRuleError, event_adapter
from shared.models.messages import pack_events


class EnvelopeSink(Protocol):
    def send(self, envelopes: list[tuple[bytes, bool]], received_at: datetime) -> None: ...
    def send_catch_up(self, envelopes: list[tuple[bytes, bool]], received_at: datetime) -> None: ...


def parse_body(body: bytes, content_type: str | None) -> list[Any]:
    """The raw events of a request: one event object or ``{"events": [...]}``.

    A request unacceptable as a whole raises ``InvalidInput`` (or its
    ``TooLarge`` / ``UnsupportedMediaType``), naming the rule it breaks."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime != "application/json":
        raise UnsupportedMediaType(
            "Content-Type must be application/json", field="Content-Type", rule="media type"
        )
    if len(body) > limits.MAX_REQUEST_BYTES:
        raise TooLarge(
            f"request body is {len(body)} bytes; the limit is {limits.MAX_REQUEST_BYTES}",
            field="body",
            rule="max_request_bytes",
        )
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(
            f"request body is not valid JSON: {exc}", field="body", rule="json"
        ) from None
    if not isinstance(document, dict):
        raise InvalidInput(
            'body must be an event object or {"events": [...]}', field="body", rule="shape"
        )
    if "type" in document:
        return [document]
    if set(document) != {"events"} or not isinstance(document["events"], list):
        raise InvalidInput(
            'body must be an event object (with "type") or {"events": [...]} and nothing else',
            field="body",
            rule="shape",
        )
    events: list[Any] = document["events"]
    if not events:
        raise InvalidInput(
            '"events" must contain at least one event', field="events", rule="not empty"
        )
    if len(events) > limits.MAX_EVENTS_PER_REQUEST:
        raise TooLarge(
            f"{len(events)} events in one request; the limit is {limits.MAX_EVENTS_PER_REQUEST}",
            field="events",
            rule="max_events_per_request",
        )
    return events


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(event)"


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as ``{field, message}``, blaming the field to fix."""
    errors = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        message = error["msg"]
        if kind == "model_attributes_type" and loc == ():
            errors.append(FieldError(field="(event)", message="an event must be a JSON object"))
            continue
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            errors.append(FieldError(field="type", message=message))
            continue
        # Discriminated unions prefix the location with the event type.
        loc = loc[1:] if loc else loc
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldRuleError):
            loc = (*loc, cause.field)
            message = str(cause)
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        errors.append(FieldError(field=_field_path(loc), message=message))
    return errors


@dataclass
class Validated:
    events: list[ActivityEvent] = field(default_factory=list)  # unique and new, to be queued
    event_ids: list[str] = field(default_factory=list)  # every accepted position
    rejected: list[Rejection] = field(default_factory=list)


Refusal = Callable[[ActivityEvent], FieldError | None]
# The first stored version of events already recorded: event_id -> content digest.
FirstVersions = Callable[[list[uuid.UUID]], dict[uuid.UUID, str]]

SAME_REQUEST_CONFLICT = "is already used by an earlier event in this request with different content"
STORED_CONFLICT = (
    "was already recorded with different content; the first version is kept "
    "(send a change as a new event with a new event_id)"
)


def _rejection(index: int, message: str) -> Rejection:
    return Rejection(index=index, errors=[FieldError(field="event_id", message=message)])


def validate_events(
    raw_events: list[Any],
    refuse: Refusal | None = None,
    first_versions: FirstVersions | None = None,
) -> Validated:
    """Validate each event on its own so one bad event never sinks the rest.

    ``refuse`` says why the caller may not send a valid event (SPEC 10: a
    person sends only their own); ``first_versions`` tells which event ids are
    already recorded, and with what content (SPEC 13: a second, different
    version is refused, rejected like an invalid event; the same content again
    is a harmless retry, accepted and not queued a second time).
    """
    checked: list[tuple[int, ActivityEvent | Rejection]] = []
    for index, raw in enumerate(raw_events):
        try:
            event = event_adapter.validate_python(raw).with_event_id()
        except ValidationError as exc:
            checked.append((index, Rejection(index=index, errors=field_errors(exc))))
            continue
        refusal = refuse(event) if refuse is not None else None
        checked.append(
            (index, event if refusal is None else Rejection(index=index, errors=[refusal]))
        )
    ids = [item.event_id for _, item in checked if isinstance(item, ActivityEvent)]
    known = first_versions(list(dict.fromkeys(ids))) if first_versions and ids else {}  # type: ignore[arg-type]
    result = Validated()
    seen: dict[Any, ActivityEvent] = {}
    for index, item in checked:
        if isinstance(item, Rejection):
            result.rejected.append(item)
            continue
        first = known.get(item.event_id)  # type: ignore[arg-type]
        if first is not None and first != item.content_digest:
            result.rejected.append(_rejection(index, STORED_CONFLICT))
            continue
        earlier = seen.get(item.event_id)
        if earlier is not None and earlier != item:
            result.rejected.append(_rejection(index, SAME_REQUEST_CONFLICT))
            continue
        if earlier is None:
            seen[item.event_id] = item
            # A retry of an event already recorded is accepted, not queued again:
            # Redis holds its digest only once it was queued durably.
            if first is None:
                result.events.append(item)
        result.event_ids.append(str(item.event_id))
    return result


def ingest(
    body: bytes,
    content_type: str | None,
    sink: EnvelopeSink,
    on_queued: Callable[[list[ActivityEvent], datetime], bool] | None = None,
    keep: Callable[[list[ActivityEvent]], list[ActivityEvent]] | None = None,
    refuse: Refusal | None = None,
    first_versions: FirstVersions | None = None,
) -> IngestResponse:
    """Validate a request and queue its valid events; raises ``InvalidInput``.

    The sink's own error (queue unavailable) propagates: nothing is accepted.
    ``on_queued`` runs only once the events are durable (the real-time update);
    when it reports failure the envelopes go to the catch-up queue, so Redis
    gets them once it is back (a failure of that send is a 503: the client's
    retry is harmless everywhere, the events keeping their ids).
    ``keep`` filters the valid events before queueing (erased users' events are
    dropped there; they still count as accepted, see docs/privacy.md).
    ``refuse`` and ``first_versions`` reject events the caller may not send, and
    second versions of recorded events (``validate_events``).
    """
    validated = validate_events(parse_body(body, content_type), refuse, first_versions)
    events = keep(validated.events) if keep is not None and validated.events else validated.events
    if events:
        received_at = datetime.now(UTC)
        envelopes = list(pack_events(events, received_at))
        sink.send(envelopes, received_at)
        if on_queued is not None and not on_queued(events, received_at):
            sink.send_catch_up(envelopes, received_at)
    return IngestResponse(
        accepted=len(validated.event_ids),
        event_ids=[uuid.UUID(event_id) for event_id in validated.event_ids],
        rejected=validated.rejected,
    )
