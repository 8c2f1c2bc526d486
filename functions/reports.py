"""Reports and recommendations (SPEC section 8), read from PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from shared import limits
from shared.http import handle, json_response, path_uuid, query_choice, query_declared, query_time
from shared.models.reports import (
    ActivityReport,
    ForumContributors,
    ForumTrending,
    LessonCohorts,
    LessonReport,
    QuizReport,
    Recommendations,
    StudentReport,
    TeacherReport,
)
from shared.repositories.reports import get_reports
from shared.services import recommendations, reports
from shared.services.openapi import (
    API,
    BAD_PARAM,
    Operation,
    Parameter,
    limit_query,
    uuid_path,
)
from shared.services.privacy import disclosed

bp = func.Blueprint()

for _name, _model in (
    ("StudentReport", StudentReport),
    ("LessonReport", LessonReport),
    ("QuizReport", QuizReport),
    ("TeacherReport", TeacherReport),
    ("ForumTrending", ForumTrending),
    ("ForumContributors", ForumContributors),
    ("ActivityReport", ActivityReport),
    ("LessonCohorts", LessonCohorts),
    ("Recommendations", Recommendations),
):
    API.schema(_name, _model)

DB_DOWN = {503: ("PostgreSQL is unavailable", "ErrorResponse")}


def _window(name: str, default: int, maximum: int, description: str) -> Parameter:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
    return Parameter(name, "query", schema, description)


WHOLE_DAYS = "window in whole UTC days: today and the days - 1 before it"
LESSON_DAYS = _window(
    "days", limits.LESSON_PROGRESS_DEFAULT_DAYS, limits.LESSON_PROGRESS_MAX_DAYS, WHOLE_DAYS
)
TRENDING_HOURS = _window(
    "hours",
    limits.FORUM_TRENDING_DEFAULT_HOURS,
    limits.FORUM_TRENDING_MAX_HOURS,
    "window in hours, ending now",
)
CONTRIBUTOR_DAYS = _window(
    "days", limits.FORUM_CONTRIBUTORS_DEFAULT_DAYS, limits.FORUM_CONTRIBUTORS_MAX_DAYS, WHOLE_DAYS
)
FORUM_LIMIT = limit_query(limits.FORUM_REPORT_DEFAULT_LIMIT, limits.FORUM_REPORT_MAX_LIMIT)
RECOMMENDATION_LIMIT = limit_query(
    limits.RECOMMENDATIONS_DEFAULT_LIMIT, limits.RECOMMENDATIONS_MAX_LIMIT
)


def _report(path: str, summary: str, schema: str, *parameters: Parameter) -> None:
    API.add(
        Operation(
            path=path,
            method="get",
            summary=summary,
            parameters=parameters,
            responses={200: (summary, schema), **BAD_PARAM, **DB_DOWN},
            tags=("reports",),
        )
    )


_report(
    "/api/v1/reports/students/{student_id}",
    "A student's lessons, quizzes, forum activity, feedback and recent activity",
    "StudentReport",
    uuid_path("student_id"),
)
_report(
    "/api/v1/reports/lessons/{lesson_id}",
    "A lesson's completion, averages, section readers and daily progress",
    "LessonReport",
    uuid_path("lesson_id"),
    LESSON_DAYS,
)
_report(
    "/api/v1/reports/quizzes/{quiz_id}",
    "A quiz's attempts, scores, pass rate and answer distribution",
    "QuizReport",
    uuid_path("quiz_id"),
)
_report(
    "/api/v1/reports/teachers/{teacher_id}",
    "A teacher's content, feedback and live-class engagement",
    "TeacherReport",
    uuid_path("teacher_id"),
)
_report(
    "/api/v1/reports/forum/trending",
    "Threads with the most actions in the last hours",
    "ForumTrending",
    TRENDING_HOURS,
    FORUM_LIMIT,
)
_report(
    "/api/v1/reports/forum/contributors",
    "Users with the most posts and replies in the last days, with likes received",
    "ForumContributors",
    CONTRIBUTOR_DAYS,
    FORUM_LIMIT,
)
_report(
    "/api/v1/reports/activity",
    "Unique events per type over time, from the roll-ups",
    "ActivityReport",
    Parameter(
        "from",
        "query",
        {"type": "string", "format": "date-time"},
        "start (inclusive), ISO 8601 with a time zone; default `to` minus 24 hours",
    ),
    Parameter(
        "to",
        "query",
        {"type": "string", "format": "date-time"},
        "end (exclusive), ISO 8601 with a time zone; default now",
    ),
    Parameter(
        "bucket",
        "query",
        {"type": "string", "enum": list(reports.BUCKETS), "default": "hour"},
        "bucket size (UTC); the longest span per size is in x-limits (activity_max_span_*)",
    ),
)
_report(
    "/api/v1/reports/cohorts/lessons/{lesson_id}",
    "Students by ISO week of starting a lesson, with the share completed within 1, 2, 4 weeks",
    "LessonCohorts",
    uuid_path("lesson_id"),
)
_report(
    "/api/v1/students/{student_id}/recommendations",
    "Ranked, explained next steps: resume a lesson, retry a quiz, take a next lesson",
    "Recommendations",
    uuid_path("student_id"),
    RECOMMENDATION_LIMIT,
)


def _now() -> datetime:
    return datetime.now(UTC)


@bp.route(route="v1/reports/students/{student_id}", methods=["GET"])
def student_report(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: disclosed(
            req,
            "student_id",
            "student report",
            json_response(reports.student_report(path_uuid(req, "student_id"), get_reports())),
        )
    )


@bp.route(route="v1/reports/lessons/{lesson_id}", methods=["GET"])
def lesson_report(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(
            reports.lesson_report(
                path_uuid(req, "lesson_id"),
                query_declared(req, LESSON_DAYS),
                _now(),
                get_reports(),
            )
        )
    )


@bp.route(route="v1/reports/quizzes/{quiz_id}", methods=["GET"])
def quiz_report(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(reports.quiz_report(path_uuid(req, "quiz_id"), get_reports()))
    )


@bp.route(route="v1/reports/teachers/{teacher_id}", methods=["GET"])
def teacher_report(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: disclosed(
            req,
            "teacher_id",
            "teacher report",
            json_response(reports.teacher_report(path_uuid(req, "teacher_id"), get_reports())),
        )
    )


@bp.route(route="v1/reports/forum/trending", methods=["GET"])
def forum_trending(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(
            reports.forum_trending(
                query_declared(req, TRENDING_HOURS),
                query_declared(req, FORUM_LIMIT),
                _now(),
                get_reports(),
            )
        )
    )


@bp.route(route="v1/reports/forum/contributors", methods=["GET"])
def forum_contributors(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(
            reports.forum_contributors(
                query_declared(req, CONTRIBUTOR_DAYS),
                query_declared(req, FORUM_LIMIT),
                _now(),
                get_reports(),
            )
        )
    )


@bp.route(route="v1/reports/activity", methods=["GET"])
def activity_report(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(
            reports.activity_report(
                query_time(req, "from"),
                query_time(req, "to"),
                query_choice(req, "bucket", tuple(reports.BUCKETS), "hour"),
                _now(),
                get_reports(),
            )
        )
    )


@bp.route(route="v1/reports/cohorts/lessons/{lesson_id}", methods=["GET"])
def lesson_cohorts(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: json_response(reports.lesson_cohorts(path_uuid(req, "lesson_id"), get_reports()))
    )


@bp.route(route="v1/students/{student_id}/recommendations", methods=["GET"])
def student_recommendations(req: func.HttpRequest) -> func.HttpResponse:
    return handle(
        lambda: disclosed(
            req,
            "student_id",
            "recommendations",
            json_response(
                recommendations.recommend(
                    path_uuid(req, "student_id"),
                    query_declared(req, RECOMMENDATION_LIMIT),
                    get_reports(),
                )
            ),
        )
    )
