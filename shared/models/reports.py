"""Response shapes of the reports and recommendations (SPEC section 8).

Conventions (docs/reports.md): counts and sums are 0 when there is no data;
averages, medians and rates are ``null`` when there is nothing to average
(an average of no scores is unknown, not zero). Averages are rounded to 2
decimals, rates and shares (0..1) to 4.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ActivityItem(BaseModel):
    event_id: uuid.UUID
    type: str
    actor_id: uuid.UUID = Field(description="the acting user (the student, or e.g. a teacher)")
    occurred_at: datetime


class StudentReport(BaseModel):
    student_id: uuid.UUID
    lessons_started: int
    lessons_completed: int
    avg_progress_percent: float | None = Field(description="over started lessons")
    total_video_watch_time: int = Field(description="seconds, over all lessons")
    quiz_attempts: int
    quizzes_passed: int = Field(description="distinct quizzes with a passed attempt")
    avg_quiz_score: float | None = Field(description="over attempts")
    forum_posts: int
    forum_replies: int
    likes_given: int
    likes_received: int = Field(description="likes of the student's posts by other users")
    feedback_received: int
    avg_feedback_score: float | None = Field(description="over feedback with a score")
    recent_activity: list[ActivityItem] = Field(
        description="newest 20 events of any type naming the student"
    )


class DailyProgress(BaseModel):
    day: date = Field(description="UTC day of last_accessed_at")
    active_students: int = Field(description="distinct students with a progress event that day")
    avg_progress_percent: float = Field(
        description="over those students, each one's highest progress reported that day"
    )


class LessonReport(BaseModel):
    lesson_id: uuid.UUID
    students_started: int
    students_completed: int
    completion_rate: float | None = Field(description="completed / started, 0..1")
    avg_progress_percent: float | None
    avg_video_watch_time: float | None = Field(description="seconds per student")
    section_readers: dict[str, int] = Field(description="section -> distinct students")
    progress_over_time: list[DailyProgress] = Field(
        description="one entry per UTC day with activity, oldest first, within `days`"
    )


class QuizReport(BaseModel):
    quiz_id: uuid.UUID
    attempts: int
    students: int
    avg_score: float | None
    median_score: float | None = Field(description="exact (mean of the two middle scores)")
    pass_rate: float | None = Field(description="passed attempts / attempts, 0..1")
    avg_attempts_to_pass: float | None = Field(
        description="over students who passed: attempt_number of their first pass"
    )
    avg_duration_seconds: float | None
    answer_distribution: dict[str, dict[str, int]] = Field(
        description=(
            "question_id -> answer -> attempts; a string answer is keyed by itself, any "
            "other JSON value by its canonical JSON text (sorted keys, no spaces)"
        )
    )


class TeacherReport(BaseModel):
    teacher_id: uuid.UUID
    content_created: dict[str, int] = Field(description="content_type -> count")
    content_updated: dict[str, int] = Field(description="content_type -> count")
    feedback_given: dict[str, int] = Field(description="feedback_type -> count")
    avg_feedback_score: float | None = Field(description="over feedback with a score")
    live_sessions: int
    live_seconds: int = Field(description="sum of duration_seconds over sessions")
    polls_launched: int
    messages_sent: int


class TrendingThread(BaseModel):
    thread_id: uuid.UUID
    actions: int
    posts: int
    replies: int
    likes: int


class ForumTrending(BaseModel):
    hours: int
    since: datetime
    threads: list[TrendingThread] = Field(description="most actions first, then thread_id")


class Contributor(BaseModel):
    user_id: uuid.UUID
    contributions: int = Field(description="posts + replies in the window")
    posts: int
    replies: int
    likes_received: int = Field(
        description="likes by other users, in the window, of any post or reply of the user"
    )


class ForumContributors(BaseModel):
    days: int
    since: datetime
    contributors: list[Contributor] = Field(description="most contributions first, then user_id")


class ActivityBucket(BaseModel):
    bucket_start: datetime
    counts: dict[str, int] = Field(description="event type -> unique events")
    total: int


class ActivityReport(BaseModel):
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from")
    to: datetime
    bucket: Literal["minute", "hour", "day"]
    buckets: list[ActivityBucket] = Field(
        description="buckets with at least one event, oldest first"
    )
    totals: dict[str, int] = Field(description="event type -> unique events in [from, to)")


class Cohort(BaseModel):
    week: str = Field(description="ISO week of started_at (UTC), e.g. 2026-W07")
    week_start: date = Field(description="the Monday of that week")
    students: int
    completed_within_1_week: float = Field(description="share of the cohort, 0..1")
    completed_within_2_weeks: float
    completed_within_4_weeks: float


class LessonCohorts(BaseModel):
    lesson_id: uuid.UUID
    cohorts: list[Cohort] = Field(description="oldest week first")


class Recommendation(BaseModel):
    kind: Literal["resume_lesson", "retry_quiz", "next_lesson"]
    id: uuid.UUID = Field(description="lesson_id or quiz_id")
    reason: str
    score: float = Field(description="higher first; see docs/reports.md for the formula")


class Recommendations(BaseModel):
    student_id: uuid.UUID
    items: list[Recommendation]


# --- a person's overview (the dashboard's index) ---------------------------------------------


class OverviewContent(BaseModel):
    content_id: uuid.UUID
    content_type: Literal["lesson", "quiz", "assignment"]
    title: str
    last_changed_at: datetime


class OverviewSession(BaseModel):
    session_id: uuid.UUID
    class_id: uuid.UUID
    joined_at: datetime


class OverviewStudent(BaseModel):
    student_id: uuid.UUID
    last_seen_at: datetime


class OverviewLesson(BaseModel):
    lesson_id: uuid.UUID
    title: str | None = Field(description="the lesson's latest title, when its content is known")
    progress_percent: float
    completed_at: datetime | None
    last_accessed_at: datetime


class OverviewQuiz(BaseModel):
    quiz_id: uuid.UUID
    title: str | None
    best_score: float
    attempts: int
    passed: bool
    last_submitted_at: datetime


class Overview(BaseModel):
    """What a person's dashboard links to: as a teacher, their content, live
    sessions and students; as a student, their lessons and quizzes."""

    user_id: uuid.UUID
    content: list[OverviewContent]
    live_sessions: list[OverviewSession]
    students: list[OverviewStudent]
    lessons: list[OverviewLesson]
    quizzes: list[OverviewQuiz]
