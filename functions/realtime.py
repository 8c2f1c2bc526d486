"""Real-time views (Redis first, PostgreSQL when Redis lacks them) and the
queue trigger that applies events to Redis when the ingest-time update missed."""

from __future__ import annotations

import azure.functions as func

from shared import limits
from shared.http import handle, json_response, path_uuid, query_declared
from shared.models.api import Leaderboard, LiveSession, Notifications, StudentProgress
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services import realtime
from shared.services.openapi import (
    API,
    BAD_PARAM,
    UNAVAILABLE,
    Operation,
    limit_query,
    uuid_path,
)
from shared.services.privacy import disclosed

bp = func.Blueprint()

LEADERBOARD_LIMIT = limit_query(limits.LEADERBOARD_DEFAULT_LIMIT, limits.LEADERBOARD_MAX_LIMIT)
NOTIFICATIONS_LIMIT = limit_query(
    limits.NOTIFICATIONS_DEFAULT_LIMIT, limits.NOTIFICATIONS_MAX_LIMIT
)

for _name, _model in (
    ("StudentProgress", StudentProgress),
    ("Leaderboard", Leaderboard),
    ("Notifications", Notifications),
    ("LiveSession", LiveSession),
):
    API.schema(_name, _model)

API.add(
    Operation(
        path="/api/v1/students/{student_id}/progress",
        method="get",
        summary="A student's lesson progress, merged order-independently",
        parameters=(uuid_path("student_id"),),
        responses={200: ("Progress per lesson", "StudentProgress"), **BAD_PARAM, **UNAVAILABLE},
        tags=("realtime",),
    )
)
API.add(
    Operation(
        path="/api/v1/quizzes/{quiz_id}/leaderboard",
        method="get",
        summary="A quiz's leaderboard",
        parameters=(
            uuid_path("quiz_id"),
            LEADERBOARD_LIMIT,
        ),
        responses={200: ("Ranked entries", "Leaderboard"), **BAD_PARAM, **UNAVAILABLE},
        tags=("realtime",),
    )
)
API.add(
    Operation(
        path="/api/v1/users/{user_id}/notifications",
        method="get",
        summary="Replies to and likes of the user's posts by others, newest first",
        parameters=(
            uuid_path("user_id"),
            NOTIFICATIONS_LIMIT,
        ),
        responses={200: ("Notifications", "Notifications"), **BAD_PARAM, **UNAVAILABLE},
        tags=("realtime",),
    )
)
API.add(
    Operation(
        path="/api/v1/live/sessions/{session_id}",
        method="get",
        summary="A live class session's teachers and their engagement",
        parameters=(uuid_path("session_id"),),
        responses={
            200: ("The session", "LiveSession"),
            404: ("No such session", "ErrorResponse"),
            **BAD_PARAM,
            **UNAVAILABLE,
        },
        tags=("realtime",),
    )
)


@bp.route(route="v1/students/{student_id}/progress", methods=["GET"])
def student_progress(req: func.HttpRequest) -> func.HttpResponse:
    def build() -> func.HttpResponse:
        student = path_uuid(req, "student_id")
        view = realtime.student_progress(student, get_realtime(), get_postgres())
        return disclosed(req, "student_id", "progress", json_response(view))

    return handle(build)


@bp.route(route="v1/quizzes/{quiz_id}/leaderboard", methods=["GET"])
def quiz_leaderboard(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(
            realtime.quiz_leaderboard(
                path_uuid(req, "quiz_id"),
                query_declared(req, LEADERBOARD_LIMIT),
                get_realtime(),
                get_postgres(),
            )
        )
    )


@bp.route(route="v1/users/{user_id}/notifications", methods=["GET"])
def user_notifications(req: func.HttpRequest) -> func.HttpResponse:
    def build() -> func.HttpResponse:
        user = path_uuid(req, "user_id")
        limit = query_declared(req, NOTIFICATIONS_LIMIT)
        view = realtime.user_notifications(user, limit, get_realtime(), get_postgres())
        return disclosed(req, "user_id", "notifications", json_response(view))

    return handle(build)


@bp.route(route="v1/live/sessions/{session_id}", methods=["GET"])
def live_session(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(
            realtime.live_session(path_uuid(req, "session_id"), get_realtime(), get_postgres())
        )
    )


@bp.queue_trigger(arg_name="msg", queue_name="%REALTIME_QUEUE%", connection="AzureWebJobsStorage")
def apply_realtime(msg: func.QueueMessage) -> None:
    """Re-apply a message's events to Redis; already-applied ones change nothing.

    Raises while Redis is down, so the host retries the message.
    """
    envelope = get_event_queue().open_envelope(msg.get_body())
    get_realtime().apply_events(envelope.events, envelope.received_at)
