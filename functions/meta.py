"""Health and the OpenAPI document (anonymous)."""

from __future__ import annotations

import azure.functions as func

from functions.routing import Call
from shared.http import json_response
from shared.models.api import HealthResponse
from shared.repositories.archive import get_archive
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services.access import PUBLIC
from shared.services.health import check_health
from shared.services.openapi import API, Operation, openapi_json
from shared.settings import get_settings

API.schema("HealthResponse", HealthResponse)


@API.route(
    Operation(
        name="health",
        route="v1/health",
        method="get",
        summary="Status of each dependency",
        rule=PUBLIC,
        level="anonymous",
        responses={
            200: (
                "ok, or degraded: a dependency is down, events are still accepted",
                "HealthResponse",
            ),
            503: ("Events cannot be accepted: the queue storage is down", "HealthResponse"),
        },
        tags=("meta",),
    )
)
def health(call: Call) -> func.HttpResponse:
    settings = get_settings()
    sinks = (settings.persist_queue, settings.archive_queue, settings.realtime_queue)
    result = check_health(
        {
            "postgres": lambda: get_postgres().ping(),
            "redis": lambda: get_realtime().ping(),
            "queue": lambda: get_event_queue().ping(),
            "archive": lambda: get_archive().ping(),
        },
        poison_counts=lambda: get_event_queue().poison_counts([q.lower() for q in sinks]),
    )
    return json_response(result, status=503 if result.status == "down" else 200)


@API.route(
    Operation(
        name="liveness",
        route="v1/health/live",
        method="get",
        summary="The process answers (touches no dependency): for a liveness probe",
        rule=PUBLIC,
        level="anonymous",
        responses={200: ("Alive", None)},
        tags=("meta",),
    )
)
def liveness(call: Call) -> func.HttpResponse:
    return json_response({"status": "alive"})


@API.route(
    Operation(
        name="openapi",
        route="v1/openapi.json",
        method="get",
        summary="This document",
        rule=PUBLIC,
        level="anonymous",
        responses={200: ("The OpenAPI 3.1 document", None)},
        tags=("meta",),
    )
)
def openapi(call: Call) -> func.HttpResponse:
    return func.HttpResponse(openapi_json(call.mode), mimetype="application/json")
