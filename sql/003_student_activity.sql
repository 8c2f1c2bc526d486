-- Student activity: lesson progress (merged state + history), quiz attempts,
-- forum activity. Column names are the event fields of shared/models/events.py.

-- Current state of one student in one lesson, merged from every event so the
-- result does not depend on arrival order or redeliveries: started_at = min,
-- completed_at = min non-null, progress_percent and video_watch_time = max,
-- sections_read = distinct union sorted bytewise (COLLATE "C", the order
-- Python's sorted() gives str), last_accessed_at = max. event_id is the event
-- with the greatest (last_accessed_at, event_id).
CREATE TABLE lesson_progress (
    student_id uuid NOT NULL,
    lesson_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    completed_at timestamptz,
    progress_percent double precision NOT NULL CHECK (progress_percent BETWEEN 0 AND 100),
    video_watch_time integer NOT NULL CHECK (video_watch_time >= 0),
    sections_read text[] COLLATE "C" NOT NULL,
    last_accessed_at timestamptz NOT NULL,
    event_id uuid NOT NULL,
    received_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (student_id, lesson_id),
    CHECK (completed_at IS NULL OR completed_at >= started_at)
);
-- Lesson report, cohorts by start week, "students who completed this lesson".
CREATE INDEX lesson_progress_lesson_idx ON lesson_progress (lesson_id, started_at);

-- Every lesson_progress event (history: progress over time).
CREATE TABLE lesson_progress_events (
    event_id uuid NOT NULL,
    student_id uuid NOT NULL,
    lesson_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    completed_at timestamptz,
    progress_percent double precision NOT NULL CHECK (progress_percent BETWEEN 0 AND 100),
    video_watch_time integer NOT NULL CHECK (video_watch_time >= 0),
    sections_read text[] COLLATE "C" NOT NULL,
    last_accessed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, last_accessed_at)
) PARTITION BY RANGE (last_accessed_at);
CREATE TABLE lesson_progress_events_default PARTITION OF lesson_progress_events DEFAULT;
-- Lesson report: progress_over_time (daily) for one lesson.
CREATE INDEX lesson_progress_events_lesson_idx
    ON lesson_progress_events (lesson_id, last_accessed_at);
-- One student's history (export, erasure).
CREATE INDEX lesson_progress_events_student_idx
    ON lesson_progress_events (student_id, last_accessed_at);

-- One row per attempt_id. A second event for an attempt already stored (same
-- attempt_id, another event_id) is a duplicate and is ignored: the first
-- stored event wins.
CREATE TABLE quiz_attempts (
    event_id uuid NOT NULL UNIQUE,
    student_id uuid NOT NULL,
    quiz_id uuid NOT NULL,
    attempt_id uuid PRIMARY KEY,
    attempt_number integer NOT NULL CHECK (attempt_number >= 1),
    answers jsonb NOT NULL,
    score double precision NOT NULL CHECK (score >= 0),
    submitted_at timestamptz NOT NULL,
    duration_seconds integer NOT NULL CHECK (duration_seconds >= 0),
    is_passed boolean NOT NULL,
    received_at timestamptz NOT NULL
);
-- Quiz report and leaderboard rebuild (per quiz, per student).
CREATE INDEX quiz_attempts_quiz_idx ON quiz_attempts (quiz_id, student_id);
-- Student report, recommendations (quizzes not yet passed).
CREATE INDEX quiz_attempts_student_idx ON quiz_attempts (student_id, submitted_at);

-- Every forum post, reply and like.
CREATE TABLE forum_activity (
    event_id uuid NOT NULL,
    user_id uuid NOT NULL,
    post_id uuid NOT NULL,
    thread_id uuid NOT NULL,
    action_type text NOT NULL CHECK (action_type IN ('post', 'reply', 'like')),
    content text,
    created_at timestamptz NOT NULL,
    parent_post_id uuid,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (event_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE forum_activity_default PARTITION OF forum_activity DEFAULT;
-- Trending threads: actions per thread in a time window.
CREATE INDEX forum_activity_thread_idx ON forum_activity (thread_id, created_at);
-- A user's posts, replies and likes given (student report, contributors).
CREATE INDEX forum_activity_user_idx ON forum_activity (user_id, created_at);
-- Likes of a post and the post's author (likes received, notifications).
CREATE INDEX forum_activity_post_idx ON forum_activity (post_id, action_type);
-- Replies to a post (notifications rebuilt from PostgreSQL).
CREATE INDEX forum_activity_parent_post_idx ON forum_activity (parent_post_id)
    WHERE parent_post_id IS NOT NULL;
-- Windows over all threads/users ("last 24 hours") within a partition.
CREATE INDEX forum_activity_created_at_idx ON forum_activity (created_at);

-- 12 months back and 3 ahead; the maintenance timer keeps extending the window.
SELECT ensure_monthly_partitions(
    'lesson_progress_events', (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '12 months')::date, 16
);
SELECT ensure_monthly_partitions(
    'forum_activity', (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '12 months')::date, 16
);
