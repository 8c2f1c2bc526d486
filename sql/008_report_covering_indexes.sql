-- Covering indexes for the reports that scan many rows (plans at ten million
-- events in docs/reports.md): each lets a report read an index alone instead
-- of visiting the table for every row.

-- Forum trending and contributors: the window's actions with the columns both
-- reports group by, read in created_at order from the window's partitions.
-- Replaces the plain created_at index of the same name (same key, so every
-- query that used it still can; one index to maintain, not two).
DROP INDEX forum_activity_created_at_idx;
CREATE INDEX forum_activity_created_at_idx ON forum_activity (created_at)
    INCLUDE (thread_id, user_id, post_id, action_type);

-- Lesson report (started, completed, averages, section readers) and cohorts:
-- every student of one lesson, without a visit to each student's row.
CREATE INDEX lesson_progress_lesson_report_idx ON lesson_progress (lesson_id)
    INCLUDE (started_at, completed_at, progress_percent, video_watch_time, sections_read);

-- Activity report: one metric over a time range (the primary key starts with
-- bucket_start and would also read every other metric's rows).
CREATE INDEX activity_rollups_metric_idx ON activity_rollups (metric, bucket_start)
    INCLUDE (dimension, value);
