-- Indexes no query needs any more, dropped so the busiest write paths
-- (forum_activity, lesson_progress) maintain fewer (docs/postgres.md):
--
-- forum_activity_user_idx (user_id, created_at): every read by user (student
-- report, notifications, export, erasure) filters on user_id and action_type
-- and is served by forum_activity_user_action_idx (007).
DROP INDEX forum_activity_user_idx;
-- forum_activity_post_idx (post_id, action_type): likes of a post are read
-- from forum_activity_likes_idx (007); a post's author from
-- forum_post_authors (011).
DROP INDEX forum_activity_post_idx;
-- lesson_progress_lesson_idx (lesson_id, started_at): the lesson report and
-- cohorts read lesson_progress_lesson_report_idx (008), recommendations
-- lesson_progress_completed_idx (007).
DROP INDEX lesson_progress_lesson_idx;
