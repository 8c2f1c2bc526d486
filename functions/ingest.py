"""POST /api/v1/events: validate, queue durably, answer 202."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.http import error_response, json_response
from shared.repositories.queue import QueueUnavailable, get_event_queue
from shared.services.ingest import RequestError, ingest
from shared.settings import get_settings

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.route(route="v1/events", methods=["POST"])
def ingest_events(req: func.HttpRequest) -> func.HttpResponse:
    try:
        result = ingest(req.get_body(), req.headers.get("Content-Type"), get_event_queue())
    except RequestError as exc:
        return error_response(exc.status, exc.message)
    except QueueUnavailable as exc:
        log.error("queue unavailable, request refused: %s", exc)
        retry_after = str(get_settings().retry_after_seconds)
        return error_response(
            503,
            "the event queue is unavailable; nothing was accepted, retry later",
            headers={"Retry-After": retry_after},
        )
    return json_response(result, status=202 if result.accepted else 422)
