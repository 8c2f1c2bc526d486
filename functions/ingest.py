"""POST /api/v1/events: validate, queue durably, update real-time state, answer 202."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.http import error_response, json_response, unavailable
from shared.repositories.queue import QueueUnavailable, get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services.ingest import RequestError, ingest
from shared.services.realtime import record

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.route(route="v1/events", methods=["POST"])
def ingest_events(req: func.HttpRequest) -> func.HttpResponse:
    try:
        result = ingest(
            req.get_body(),
            req.headers.get("Content-Type"),
            get_event_queue(),
            on_queued=lambda events, at: record(get_realtime(), events, at),
        )
    except RequestError as exc:
        return error_response(exc.status, exc.message)
    except QueueUnavailable as exc:
        log.error("queue unavailable, request refused: %s", exc)
        return unavailable("the event queue is unavailable; nothing was accepted, retry later")
    return json_response(result, status=202 if result.accepted else 422)
