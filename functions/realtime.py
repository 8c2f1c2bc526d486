"""Real-time views (Redis first, PostgreSQL when Redis lacks them) and the
queue trigger that applies events to Redis when the ingest-time update missed."""

from __future__ import annotations

import azure.functions as func

from functions.routing import Call
from shared import limits, telemetry
from shared.http import query_declared
from shared.models.access import Role
from shared.models.api import (
    Leaderboard,
    LessonStudents,
    LiveSession,
    Notifications,
    StudentProgress,
)
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services import realtime_views
from shared.services.access import (
    CONTENT_REPORT,
    LIVE_SESSION,
    OWN_RECORD,
    QUIZ_LEADERBOARD,
    STUDENT_RECORD,
)
from shared.services.delivery import configured_policy, deliver
from shared.services.openapi import (
    API,
    BAD_PARAM,
    UNAVAILABLE,
    Operation,
    limit_query,
    uuid_path,
)
from shared.settings import get_settings

bp = func.Blueprint()

LEADERBOARD_LIMIT = limit_query(limits.LEADERBOARD_DEFAULT_LIMIT, limits.LEADERBOARD_MAX_LIMIT)
NOTIFICATIONS_LIMIT = limit_query(
    limits.NOTIFICATIONS_DEFAULT_LIMIT, limits.NOTIFICATIONS_MAX_LIMIT
)
LESSON_STUDENTS_LIMIT = limit_query(
    limits.LESSON_STUDENTS_DEFAULT_LIMIT, limits.LESSON_STUDENTS_MAX_LIMIT
)

for _name, _model in (
    ("StudentProgress", StudentProgress),
    ("Leaderboard", Leaderboard),
    ("Notifications", Notifications),
    ("LiveSession", LiveSession),
    ("LessonStudents", LessonStudents),
):
    API.schema(_name, _model)


@API.route(
    Operation(
        name="student_progress",
        live_view="progress",
        route="v1/students/{student_id}/progress",
        method="get",
        summary="A student's lesson progress, merged order-independently",
        rule=STUDENT_RECORD,
        target="student_id",
        discloses="progress",
        parameters=(uuid_path("student_id"),),
        responses={200: ("Progress per lesson", "StudentProgress"), **BAD_PARAM, **UNAVAILABLE},
        tags=("realtime",),
    )
)
def student_progress(call: Call) -> StudentProgress:
    return realtime_views.student_progress(
        call.path_uuid("student_id"), get_realtime(), get_postgres()
    )


@API.route(
    Operation(
        name="lesson_progress",
        live_view="lesson",
        route="v1/lessons/{lesson_id}/progress",
        method="get",
        summary="Each student's progress in a lesson, most recently active first",
        rule=CONTENT_REPORT,
        target="lesson_id",
        parameters=(uuid_path("lesson_id"), LESSON_STUDENTS_LIMIT),
        responses={200: ("The lesson's students", "LessonStudents"), **BAD_PARAM, **UNAVAILABLE},
        tags=("realtime",),
    )
)
def lesson_progress(call: Call) -> LessonStudents:
    return realtime_views.lesson_progress(
        call.path_uuid("lesson_id"),
        query_declared(call.req, LESSON_STUDENTS_LIMIT),
        get_realtime(),
        get_postgres(),
    )


@API.route(
    Operation(
        name="quiz_leaderboard",
        live_view="lb",
        route="v1/quizzes/{quiz_id}/leaderboard",
        method="get",
        summary="A quiz's leaderboard (for a student: other students' ids hidden, own entry added)",
        rule=QUIZ_LEADERBOARD,
        target="quiz_id",
        parameters=(uuid_path("quiz_id"), LEADERBOARD_LIMIT),
        responses={200: ("Ranked entries", "Leaderboard"), **BAD_PARAM, **UNAVAILABLE},
        tags=("realtime",),
    )
)
def quiz_leaderboard(call: Call) -> Leaderboard:
    # Only a student let in as a student sees the board with the others' ids hidden.
    viewer = call.caller.user_id if call.granted is Role.STUDENT else None
    return realtime_views.quiz_leaderboard(
        call.path_uuid("quiz_id"),
        query_declared(call.req, LEADERBOARD_LIMIT),
        get_realtime(),
        get_postgres(),
        viewer=viewer,
    )


@API.route(
    Operation(
        name="user_notifications",
        live_view="notif",
        route="v1/users/{user_id}/notifications",
        method="get",
        summary="Replies to and likes of the user's posts by others, newest first",
        rule=OWN_RECORD,
        target="user_id",
        discloses="notifications",
        parameters=(uuid_path("user_id"), NOTIFICATIONS_LIMIT),
        responses={200: ("Notifications", "Notifications"), **BAD_PARAM, **UNAVAILABLE},
        tags=("realtime",),
    )
)
def user_notifications(call: Call) -> Notifications:
    return realtime_views.user_notifications(
        call.path_uuid("user_id"),
        query_declared(call.req, NOTIFICATIONS_LIMIT),
        get_realtime(),
        get_postgres(),
    )


@API.route(
    Operation(
        name="live_session",
        live_view="live",
        route="v1/live/sessions/{session_id}",
        method="get",
        summary="A live class session's teachers and their engagement",
        rule=LIVE_SESSION,
        target="session_id",
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
def live_session(call: Call) -> LiveSession:
    return realtime_views.live_session(call.path_uuid("session_id"), get_realtime(), get_postgres())


def catch_up(body: bytes) -> None:
    envelope = get_event_queue().open_envelope(body)
    telemetry.record_lag(get_settings().realtime_queue, envelope.received_at)
    get_realtime().apply_events(envelope.events, envelope.received_at)


@bp.queue_trigger(arg_name="msg", queue_name="%REALTIME_QUEUE%", connection="AzureWebJobsStorage")
def apply_realtime(msg: func.QueueMessage) -> None:
    """Re-apply a message's events to Redis; already-applied ones change nothing.

    While Redis is down the message waits and retries with growing delays.
    """
    queue = get_settings().realtime_queue.lower()
    deliver(msg.get_body(), queue, catch_up, get_event_queue(), configured_policy())
