"""Privacy and compliance (SPEC 9): erasure, export and the record of
disclosures (admin level), and the daily retention timer."""

from __future__ import annotations

import logging
from collections.abc import Callable

import azure.functions as func
from azure.core.exceptions import AzureError
from redis.exceptions import RedisError

from shared import limits
from shared.http import handle, json_response, path_uuid, query_declared, unavailable
from shared.repositories.archive import get_archive
from shared.repositories.postgres import get_postgres
from shared.repositories.realtime import get_realtime
from shared.services import privacy
from shared.services.openapi import API, BAD_PARAM, Operation, Parameter, limit_query, uuid_path
from shared.settings import get_settings

bp = func.Blueprint()
log = logging.getLogger(__name__)

for _name, _model in (
    ("ErasureResponse", privacy.ErasureResponse),
    ("ExportPage", privacy.ExportPage),
    ("Disclosures", privacy.Disclosures),
):
    API.schema(_name, _model)

EXPORT_LIMIT = limit_query(limits.EXPORT_PAGE_DEFAULT_LIMIT, limits.EXPORT_PAGE_MAX_LIMIT)
DISCLOSURES_LIMIT = limit_query(limits.DISCLOSURES_DEFAULT_LIMIT, limits.DISCLOSURES_MAX_LIMIT)
_CURSOR = Parameter("cursor", "query", {"type": "string"}, "next_cursor of the previous page")
_STORES_DOWN = {
    503: ("A store is unavailable; retry (the operation is idempotent)", "ErrorResponse")
}

API.add(
    Operation(
        path="/api/v1/users/{user_id}",
        method="delete",
        summary="Erase the user from every store (GDPR Art. 17); idempotent",
        auth="admin",
        parameters=(uuid_path("user_id"),),
        responses={200: ("What was erased", "ErasureResponse"), **BAD_PARAM, **_STORES_DOWN},
        tags=("privacy",),
    )
)
API.add(
    Operation(
        path="/api/v1/users/{user_id}/export",
        method="get",
        summary="Everything held about the user, page by page (GDPR Art. 15 and 20)",
        auth="admin",
        parameters=(
            uuid_path("user_id"),
            _CURSOR,
            EXPORT_LIMIT,
        ),
        responses={200: ("One page", "ExportPage"), **BAD_PARAM, **_STORES_DOWN},
        tags=("privacy",),
    )
)
API.add(
    Operation(
        path="/api/v1/users/{user_id}/disclosures",
        method="get",
        summary="The record of disclosures of the user's data (FERPA 34 CFR 99.32), newest first",
        auth="admin",
        parameters=(
            uuid_path("user_id"),
            _CURSOR,
            DISCLOSURES_LIMIT,
        ),
        responses={200: ("Disclosures", "Disclosures"), **BAD_PARAM, **_STORES_DOWN},
        tags=("privacy",),
    )
)


def _guarded(build: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """``handle`` plus Redis and archive failures: the operation needs every store."""
    try:
        return handle(build)
    except (RedisError, AzureError) as exc:
        log.error("store unavailable during a privacy operation: %s", exc)
        return unavailable("a store is unavailable; retry (the operation is idempotent)")


@bp.route(route="v1/users/{user_id}", methods=["DELETE"], auth_level=func.AuthLevel.ADMIN)
def erase_user(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(
        lambda: json_response(
            privacy.erase_user(
                req, path_uuid(req, "user_id"), get_postgres(), get_archive(), get_realtime()
            )
        )
    )


@bp.route(route="v1/users/{user_id}/export", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def export_user(req: func.HttpRequest) -> func.HttpResponse:
    def build() -> func.HttpResponse:
        user = path_uuid(req, "user_id")
        limit = query_declared(req, EXPORT_LIMIT)
        page = privacy.export_page(
            user, req.params.get("cursor"), limit, get_postgres(), get_archive(), get_realtime()
        )
        privacy.record_disclosure(req, user, "export", get_postgres(), level="admin")
        return json_response(page)

    return _guarded(build)


@bp.route(route="v1/users/{user_id}/disclosures", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def user_disclosures(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(
        lambda: json_response(
            privacy.disclosures(
                get_postgres(),
                path_uuid(req, "user_id"),
                req.params.get("cursor"),
                query_declared(req, DISCLOSURES_LIMIT),
            )
        )
    )


# Daily at 02:30 UTC, a quiet hour; dropping partitions briefly locks their parents.
@bp.timer_trigger(arg_name="timer", schedule="0 30 2 * * *", run_on_startup=False)
def enforce_retention(timer: func.TimerRequest) -> None:
    settings = get_settings()
    result = privacy.enforce_retention(
        get_postgres(),
        get_archive(),
        settings.retention_postgres_days,
        settings.retention_archive_days,
    )
    log.info("retention enforced: %s", result)
