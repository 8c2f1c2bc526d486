-- Teacher activity: content creation, feedback, live class engagement.
-- Column names are the event fields of shared/models/events.py.

CREATE TABLE content_activity (
    event_id uuid PRIMARY KEY,
    teacher_id uuid NOT NULL,
    content_id uuid NOT NULL,
    content_type text NOT NULL CHECK (content_type IN ('lesson', 'quiz', 'assignment')),
    action text NOT NULL CHECK (action IN ('created', 'updated')),
    "timestamp" timestamptz NOT NULL,
    title text NOT NULL,
    changes_summary text,
    received_at timestamptz NOT NULL
);
-- Teacher report (content created/updated by type).
CREATE INDEX content_activity_teacher_idx ON content_activity (teacher_id, "timestamp");
-- One piece of content's change log.
CREATE INDEX content_activity_content_idx ON content_activity (content_id, "timestamp");

CREATE TABLE feedback (
    event_id uuid PRIMARY KEY,
    teacher_id uuid NOT NULL,
    student_id uuid NOT NULL,
    submission_id uuid NOT NULL,
    feedback_text text NOT NULL,
    feedback_type text NOT NULL CHECK (feedback_type IN ('text', 'rubric', 'audio')),
    created_at timestamptz NOT NULL,
    score double precision CHECK (score >= 0),
    received_at timestamptz NOT NULL
);
-- Teacher report (feedback given) and student report (feedback received).
CREATE INDEX feedback_teacher_idx ON feedback (teacher_id, created_at);
CREATE INDEX feedback_student_idx ON feedback (student_id, created_at);
CREATE INDEX feedback_submission_idx ON feedback (submission_id);

-- A teacher's engagement in one live session, merged order-independently:
-- joined_at = min, left_at = max non-null, duration_seconds = max,
-- polls_launched = sorted distinct union, messages_sent = max. event_id and
-- class_id come from the event with the greatest (duration_seconds, event_id),
-- the latest snapshot of the session.
CREATE TABLE live_class_engagement (
    session_id uuid NOT NULL,
    teacher_id uuid NOT NULL,
    class_id uuid NOT NULL,
    joined_at timestamptz NOT NULL,
    left_at timestamptz,
    duration_seconds integer NOT NULL CHECK (duration_seconds >= 0),
    polls_launched uuid[] NOT NULL,
    messages_sent integer NOT NULL CHECK (messages_sent >= 0),
    event_id uuid NOT NULL,
    received_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, teacher_id),
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
-- Teacher report (live sessions, seconds, polls, messages).
CREATE INDEX live_class_engagement_teacher_idx ON live_class_engagement (teacher_id, joined_at);
CREATE INDEX live_class_engagement_class_idx ON live_class_engagement (class_id, joined_at);
