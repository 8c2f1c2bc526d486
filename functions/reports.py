"""Reports and recommendations (SPEC section 8), read from PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.routing import Call
from shared import limits
from shared.http import query_choice, query_declared, query_time
from shared.models.reports import (
    ActivityReport,
    ForumContributors,
    ForumTrending,
    LessonCohorts,
    LessonReport,
    Overview,
    QuizReport,
    Recommendations,
    StudentReport,
    TeacherReport,
)
from shared.repositories.reports import get_reports
from shared.services import recommendations, reports
from shared.services.access import (
    AGGREGATES,
    CONTENT_REPORT,
    OWN_RECORD,
    STUDENT_RECORD,
    TEACHER_REPORT,
    Rule,
)
from shared.services.openapi import (
    API,
    BAD_PARAM,
    Operation,
    Parameter,
    limit_query,
    uuid_path,
)

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
    ("Overview", Overview),
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
ACTIVITY_PARAMETERS = (
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


def _report(
    name: str,
    route: str,
    summary: str,
    schema: str,
    rule: Rule,
    *parameters: Parameter,
    discloses: str | None = None,
) -> Operation:
    """A report's declaration: GET, the rule, its target (the first path parameter)."""
    target = next((p.name for p in parameters if p.where == "path"), None)
    return Operation(
        name=name,
        route=route,
        method="get",
        summary=summary,
        rule=rule,
        target=target,
        discloses=discloses,
        parameters=parameters,
        responses={200: (summary, schema), **BAD_PARAM, **DB_DOWN},
        tags=("reports",),
    )


def _now() -> datetime:
    return datetime.now(UTC)


@API.route(
    _report(
        "student_report",
        "v1/reports/students/{student_id}",
        "A student's lessons, quizzes, forum activity, feedback and recent activity",
        "StudentReport",
        STUDENT_RECORD,
        uuid_path("student_id"),
        discloses="student report",
    )
)
def student_report(call: Call) -> StudentReport:
    return reports.student_report(call.path_uuid("student_id"), get_reports())


@API.route(
    _report(
        "lesson_report",
        "v1/reports/lessons/{lesson_id}",
        "A lesson's completion, averages, section readers and daily progress",
        "LessonReport",
        CONTENT_REPORT,
        uuid_path("lesson_id"),
        LESSON_DAYS,
    )
)
def lesson_report(call: Call) -> LessonReport:
    return reports.lesson_report(
        call.path_uuid("lesson_id"), query_declared(call.req, LESSON_DAYS), _now(), get_reports()
    )


@API.route(
    _report(
        "quiz_report",
        "v1/reports/quizzes/{quiz_id}",
        "A quiz's attempts, scores, pass rate and answer distribution",
        "QuizReport",
        CONTENT_REPORT,
        uuid_path("quiz_id"),
    )
)
def quiz_report(call: Call) -> QuizReport:
    return reports.quiz_report(call.path_uuid("quiz_id"), get_reports())


@API.route(
    _report(
        "teacher_report",
        "v1/reports/teachers/{teacher_id}",
        "A teacher's content, feedback and live-class engagement",
        "TeacherReport",
        TEACHER_REPORT,
        uuid_path("teacher_id"),
        discloses="teacher report",
    )
)
def teacher_report(call: Call) -> TeacherReport:
    return reports.teacher_report(call.path_uuid("teacher_id"), get_reports())


@API.route(
    _report(
        "forum_trending",
        "v1/reports/forum/trending",
        "Threads with the most actions in the last hours",
        "ForumTrending",
        AGGREGATES,
        TRENDING_HOURS,
        FORUM_LIMIT,
    )
)
def forum_trending(call: Call) -> ForumTrending:
    return reports.forum_trending(
        query_declared(call.req, TRENDING_HOURS),
        query_declared(call.req, FORUM_LIMIT),
        _now(),
        get_reports(),
    )


@API.route(
    _report(
        "forum_contributors",
        "v1/reports/forum/contributors",
        "Users with the most posts and replies in the last days, with likes received",
        "ForumContributors",
        AGGREGATES,
        CONTRIBUTOR_DAYS,
        FORUM_LIMIT,
    )
)
def forum_contributors(call: Call) -> ForumContributors:
    return reports.forum_contributors(
        query_declared(call.req, CONTRIBUTOR_DAYS),
        query_declared(call.req, FORUM_LIMIT),
        _now(),
        get_reports(),
    )


@API.route(
    _report(
        "activity_report",
        "v1/reports/activity",
        "Unique events per type over time, from the roll-ups",
        "ActivityReport",
        AGGREGATES,
        *ACTIVITY_PARAMETERS,
    )
)
def activity_report(call: Call) -> ActivityReport:
    return reports.activity_report(
        query_time(call.req, "from"),
        query_time(call.req, "to"),
        query_choice(call.req, "bucket", tuple(reports.BUCKETS), "hour"),
        _now(),
        get_reports(),
    )


@API.route(
    _report(
        "lesson_cohorts",
        "v1/reports/cohorts/lessons/{lesson_id}",
        "Students by ISO week of starting a lesson, with the share completed within 1, 2, 4 weeks",
        "LessonCohorts",
        CONTENT_REPORT,
        uuid_path("lesson_id"),
    )
)
def lesson_cohorts(call: Call) -> LessonCohorts:
    return reports.lesson_cohorts(call.path_uuid("lesson_id"), get_reports())


@API.route(
    _report(
        "student_recommendations",
        "v1/students/{student_id}/recommendations",
        "Ranked, explained next steps: resume a lesson, retry a quiz, take a next lesson",
        "Recommendations",
        STUDENT_RECORD,
        uuid_path("student_id"),
        RECOMMENDATION_LIMIT,
        discloses="recommendations",
    )
)
def student_recommendations(call: Call) -> Recommendations:
    return recommendations.recommend(
        call.path_uuid("student_id"), query_declared(call.req, RECOMMENDATION_LIMIT), get_reports()
    )


@API.route(
    _report(
        "user_overview",
        "v1/users/{user_id}/overview",
        "What a person's dashboard links to: a teacher's content, live sessions and "
        "students; a student's lessons and quizzes",
        "Overview",
        OWN_RECORD,
        uuid_path("user_id"),
        discloses="overview",
    )
)
def user_overview(call: Call) -> Overview:
    return reports.overview(call.path_uuid("user_id"), get_reports())
