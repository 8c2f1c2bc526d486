"""POST /api/v1/events: validate, queue durably, update real-time state, answer 202."""

from __future__ import annotations

import logging

import azure.functions as func
from pydantic import TypeAdapter

from shared.http import error_response, json_response, unavailable
from shared.models.api import EventBatch, IngestResponse
from shared.models.events import Event
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import QueueUnavailable, get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services.ingest import RequestError, ingest
from shared.services.openapi import API, Operation
from shared.services.privacy import drop_erased_at_ingest
from shared.services.realtime import record

bp = func.Blueprint()
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
API.add(
    Operation(
        path="/api/v1/events",
        method="post",
        summary="Record one event or a batch of events",
        request="IngestRequest",
        responses={
            202: ("At least one event accepted (queued durably)", "IngestResponse"),
            422: ("No event valid", "IngestResponse"),
            **_BODY_ERRORS,
            503: ("Queue unavailable; nothing accepted; retry after Retry-After", "ErrorResponse"),
        },
        tags=("ingest",),
    )
)


@bp.route(route="v1/events", methods=["POST"])
def ingest_events(req: func.HttpRequest) -> func.HttpResponse:
    try:
        result = ingest(
            req.get_body(),
            req.headers.get("Content-Type"),
            get_event_queue(),
            on_queued=lambda events, at: record(get_realtime(), events, at),
            keep=lambda events: drop_erased_at_ingest(events, get_realtime(), get_postgres()),
        )
    except RequestError as exc:
        return error_response(exc.status, exc.message)
    except QueueUnavailable as exc:
        log.error("queue unavailable, request refused: %s", exc)
        return unavailable("the event queue is unavailable; nothing was accepted, retry later")
    return json_response(result, status=202 if result.accepted else 422)
