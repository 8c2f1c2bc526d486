"""Health and the OpenAPI document (anonymous)."""

from __future__ import annotations

import azure.functions as func

from shared.http import json_response
from shared.repositories.archive import get_archive
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services.health import check_health
from shared.services.openapi import openapi_json

bp = func.Blueprint()


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
