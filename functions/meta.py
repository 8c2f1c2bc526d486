"""Health and the OpenAPI document (anonymous)."""

from __future__ import annotations

import azure.functions as func

from shared.http import json_response
from shared.models.api import HealthResponse
from shared.repositories.archive import get_archive
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services.health import check_health
from shared.services.openapi import API, Operation, openapi_json

bp = func.Blueprint()

API.schema("HealthResponse", HealthResponse)
API.add(
    Operation(
        path="/api/v1/health",
        method="get",
        summary="Status of each dependency",
        auth="anonymous",
        responses={
            200: ("Every dependency is up", "HealthResponse"),
            503: ("A dependency is down", "HealthResponse"),
        },
        tags=("meta",),
    )
)
API.add(
    Operation(
        path="/api/v1/openapi.json",
        method="get",
        summary="This document",
        auth="anonymous",
        responses={200: ("The OpenAPI 3.1 document", None)},
        tags=("meta",),
    )
)


@bp.route(route="v1/health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    result = check_health(
        {
            "postgres": lambda: get_postgres().ping(),
            "redis": lambda: get_realtime().ping(),
            "queue": lambda: get_event_queue().ping(),
            "archive": lambda: get_archive().ping(),
        }
    )
    return json_response(result, status=200 if result.status == "ok" else 503)


@bp.route(route="v1/openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(openapi_json(), mimetype="application/json")
