"""Privacy and compliance (SPEC 9): erasure, export and the record of
disclosures (admin level), and the daily retention timer."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.routing import Call
from shared import limits
from shared.http import query_declared
from shared.models.privacy import Disclosures, ErasureResponse, ExportPage
from shared.repositories.archive import get_archive
from shared.repositories.postgres import get_postgres
from shared.repositories.realtime import get_realtime
from shared.services import access_log, privacy
from shared.services.access import ADMIN_ONLY, OWN_RECORD
from shared.services.openapi import API, BAD_PARAM, Operation, Parameter, limit_query, uuid_path
from shared.settings import get_settings

bp = func.Blueprint()
log = logging.getLogger(__name__)

for _name, _model in (
    ("ErasureResponse", ErasureResponse),
    ("ExportPage", ExportPage),
    ("Disclosures", Disclosures),
):
    API.schema(_name, _model)

EXPORT_LIMIT = limit_query(limits.EXPORT_PAGE_DEFAULT_LIMIT, limits.EXPORT_PAGE_MAX_LIMIT)
DISCLOSURES_LIMIT = limit_query(limits.DISCLOSURES_DEFAULT_LIMIT, limits.DISCLOSURES_MAX_LIMIT)
_CURSOR = Parameter("cursor", "query", {"type": "string"}, "next_cursor of the previous page")
_STORES_DOWN = {
    503: ("A store is unavailable; retry (the operation is idempotent)", "ErrorResponse")
}


@API.route(
    Operation(
        name="erase_user",
        route="v1/users/{user_id}",
        method="delete",
        summary="Erase the user from every store (GDPR Art. 17); idempotent",
        rule=ADMIN_ONLY,
        level="admin",
        target="user_id",
        # The erasure deleted the user's earlier access log; this entry is the proof it ran.
        discloses="erase",
        parameters=(uuid_path("user_id"),),
        responses={200: ("What was erased", "ErasureResponse"), **BAD_PARAM, **_STORES_DOWN},
        tags=("privacy",),
    )
)
def erase_user(call: Call) -> ErasureResponse:
    return privacy.erase_user(
        call.path_uuid("user_id"),
        call.caller.accessor,
        get_postgres(),
        get_archive(),
        get_realtime(),
    )


@API.route(
    Operation(
        name="export_user",
        route="v1/users/{user_id}/export",
        method="get",
        summary="Everything held about the user, page by page (GDPR Art. 15 and 20)",
        rule=OWN_RECORD,
        level="admin",
        target="user_id",
        discloses="export",
        parameters=(uuid_path("user_id"), _CURSOR, EXPORT_LIMIT),
        responses={200: ("One page", "ExportPage"), **BAD_PARAM, **_STORES_DOWN},
        tags=("privacy",),
    )
)
def export_user(call: Call) -> ExportPage:
    return privacy.export_page(
        call.path_uuid("user_id"),
        call.req.params.get("cursor"),
        query_declared(call.req, EXPORT_LIMIT),
        get_postgres(),
        get_archive(),
        get_realtime(),
    )


@API.route(
    Operation(
        name="user_disclosures",
        route="v1/users/{user_id}/disclosures",
        method="get",
        summary="The record of disclosures of the user's data and of refused attempts "
        "(FERPA 34 CFR 99.32), newest first",
        rule=OWN_RECORD,
        level="admin",
        target="user_id",
        parameters=(uuid_path("user_id"), _CURSOR, DISCLOSURES_LIMIT),
        responses={200: ("Disclosures", "Disclosures"), **BAD_PARAM, **_STORES_DOWN},
        tags=("privacy",),
    )
)
def user_disclosures(call: Call) -> Disclosures:
    return access_log.disclosures(
        get_postgres(),
        call.path_uuid("user_id"),
        call.req.params.get("cursor"),
        query_declared(call.req, DISCLOSURES_LIMIT),
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
