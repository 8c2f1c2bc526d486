-- Indexes for the reports and recommendations (SPEC section 8; plans at ten
-- million events in docs/reports.md). Each names the query it serves.

-- Student report, recent_activity: the newest events where the student is the
-- actor, read newest-first from the index and stopped after 20 (the GIN index
-- on user_ids would fetch and sort every event of a busy student). Events
-- naming the student otherwise (feedback received) come from
-- feedback_student_idx the same way.
CREATE INDEX event_ledger_actor_idx ON event_ledger (actor_id, occurred_at DESC, event_id DESC);

-- Student report (posts, replies, likes given; the student's own post ids for
-- likes_received) and forum contributors (top authors' posts): index-only.
CREATE INDEX forum_activity_user_action_idx ON forum_activity (user_id, action_type)
    INCLUDE (post_id);
-- likes_received: the likes of a post and who gave them, index-only.
CREATE INDEX forum_activity_likes_idx ON forum_activity (post_id) INCLUDE (user_id)
    WHERE action_type = 'like';

-- Lesson report, progress_over_time: the lesson's events in the window,
-- index-only. Replaces the narrower index of the same name and key (same
-- name, so docs/postgres.md stays right; one index to maintain, not two).
DROP INDEX lesson_progress_events_lesson_idx;
CREATE INDEX lesson_progress_events_lesson_idx
    ON lesson_progress_events (lesson_id, last_accessed_at) INCLUDE (student_id, progress_percent);

-- Recommendations, next_lesson: the latest completers of a lesson ...
CREATE INDEX lesson_progress_completed_idx
    ON lesson_progress (lesson_id, completed_at DESC, student_id)
    WHERE completed_at IS NOT NULL;
-- ... and the first lesson each of them started after completing it.
CREATE INDEX lesson_progress_student_started_idx
    ON lesson_progress (student_id, started_at, lesson_id);
