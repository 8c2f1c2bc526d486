"""POST /api/v1/events: validate, queue durably, update real-time state, answer 202."""

from __future__ import annotations

import logging
import uuid

import azure.functions as func
from pydantic import TypeAdapter
from redis.exceptions import RedisError

from functions.routing import Call, resource
from shared import telemetry
from shared.http import json_response, unavailable
from shared.models.api import EventBatch, FieldError, IngestResponse
from shared.models.events import ActivityEvent, Event
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import QueueUnavailable, get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services import access_log
from shared.services.access import OWN_EVENTS, event_refusal
from shared.services.ingest import STORED_CONFLICT, ingest
from shared.services.openapi import API, Operation
from shared.services.privacy import drop_erased_at_ingest
from shared.services.realtime import record

log = logging.getLogger(__name__)

_BODY_ERRORS = {
    400: ("Body is not JSON, or not an event / {events: [...]}", "ErrorResponse"),
    413: ("Over the event count or byte limit", "ErrorResponse"),
    415: ("Content-Type is not application/json", "ErrorResponse"),
}

API.schema("Event", TypeAdapter(Event))
API.schema("EventBatch", EventBatch)
API.schema("IngestResponse", IngestResponse)
API.schema("IngestRequest", TypeAdapter(Event | EventBatch))


def first_versions(event_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """What Redis knows of these events' first versions; nothing while it is down
    (the sinks then keep the first version themselves)."""
    try:
        return get_realtime().first_versions(event_ids)
    except RedisError as exc:
        log.warning("cannot tell second versions of events apart at ingest: %s", exc)
        return {}


@API.route(
    Operation(
        name="ingest_events",
        route="v1/events",
        method="post",
        summary="Record one event or a batch of events",
        rule=OWN_EVENTS,
        request="IngestRequest",
        responses={
            202: ("At least one event accepted (queued durably)", "IngestResponse"),
            422: ("No event valid (or none the caller may send)", "IngestResponse"),
            **_BODY_ERRORS,
            503: ("Queue unavailable; nothing accepted; retry after Retry-After", "ErrorResponse"),
        },
        tags=("ingest",),
    )
)
def ingest_events(call: Call) -> func.HttpResponse:
    refused: set[uuid.UUID] = set()

    def refuse(event: ActivityEvent) -> FieldError | None:
        error = event_refusal(call.caller, event)
        if error is not None:
            refused.add(event.actor_id)
        return error

    try:  # a body unacceptable as a whole raises InvalidInput, which routing answers
        result = ingest(
            call.req.get_body(),
            call.req.headers.get("Content-Type"),
            get_event_queue(),
            on_queued=lambda events, at: record(get_realtime(), events, at),
            keep=lambda events: drop_erased_at_ingest(events, get_realtime(), get_postgres()),
            refuse=refuse,
            first_versions=first_versions,
        )
    except QueueUnavailable as exc:
        log.error("queue unavailable, request refused: %s", exc)
        return unavailable("the event queue is unavailable; nothing was accepted, retry later")
    finally:
        # Each person someone tried to write as: one refused attempt per request.
        for actor in refused:
            access_log.record(
                get_postgres(),
                subject_id=actor,
                accessor=call.caller.accessor,
                action="send events",
                resource=resource(call.req),
                outcome=access_log.REFUSED,
                rule=OWN_EVENTS.name,
            )
    _count(result)
    return json_response(result, status=202 if result.accepted else 422)


def _count(result: IngestResponse) -> None:
    """Accepted and rejected events, the rejections by reason (docs/operations.md)."""
    telemetry.events_accepted.add(result.accepted)
    for rejection in result.rejected:
        message = rejection.errors[0].message if rejection.errors else ""
        if message.startswith("refused by rule"):
            reason = "refused"
        elif message == STORED_CONFLICT:
            reason = "conflict"
        else:
            reason = "invalid"
        telemetry.events_rejected.add(1, {"reason": reason})
