"""The report queries' SQL (SPEC section 8), run by ``ReportsRepository``.

Every statement is parameterised (``%(name)s``). Which index serves which
query, with plans at ten million events, is in docs/reports.md.
"""

from __future__ import annotations

from typing import LiteralString

STUDENT_SUMMARY: LiteralString = """
WITH lessons AS (
    SELECT count(*) AS lessons_started,
           count(completed_at) AS lessons_completed,
           avg(progress_percent) AS avg_progress_percent,
           coalesce(sum(video_watch_time), 0) AS total_video_watch_time
    FROM lesson_progress WHERE student_id = %(student)s
), quizzes AS (
    SELECT count(*) AS quiz_attempts,
           count(DISTINCT quiz_id) FILTER (WHERE is_passed) AS quizzes_passed,
           avg(score) AS avg_quiz_score
    FROM quiz_attempts WHERE student_id = %(student)s
), forum AS (
    -- Posts, replies and likes received, from the per-day counts the forum
    -- triggers keep (sql/011): the same figures the contributors report sums,
    -- without matching a prolific author's posts against every like.
    SELECT coalesce(sum(posts), 0)::bigint AS forum_posts,
           coalesce(sum(replies), 0)::bigint AS forum_replies,
           coalesce(sum(likes_received), 0)::bigint AS likes_received
    FROM forum_contributions WHERE user_id = %(student)s
), given AS (
    SELECT count(*) AS likes_given
    FROM forum_activity WHERE user_id = %(student)s AND action_type = 'like'
), feedback_received AS (
    SELECT count(*) AS feedback_received, avg(score) AS avg_feedback_score
    FROM feedback WHERE student_id = %(student)s
)
SELECT * FROM lessons, quizzes, forum, given, feedback_received
"""

# The newest events naming the student, each branch read newest-first from an
# index and stopped at the limit: as the actor (event_ledger_actor_idx), or as
# the student of a feedback (feedback_student_idx). Feedback is the only event
# type naming a user besides its actor (``subject_fields``; a unit test fails
# when another type gains one, pointing here). The GIN index on user_ids would
# answer the same question but fetches and sorts every event of the student.
RECENT_ACTIVITY: LiteralString = """
(SELECT event_id, type, actor_id, occurred_at FROM event_ledger
 WHERE actor_id = %(user)s
 ORDER BY occurred_at DESC, event_id DESC LIMIT %(limit)s)
UNION
(SELECT event_id, 'feedback', teacher_id, created_at FROM feedback
 WHERE student_id = %(user)s
 ORDER BY created_at DESC, event_id DESC LIMIT %(limit)s)
ORDER BY occurred_at DESC, event_id DESC
LIMIT %(limit)s
"""

LESSON_SUMMARY: LiteralString = """
SELECT count(*) AS students_started,
       count(completed_at) AS students_completed,
       avg(progress_percent) AS avg_progress_percent,
       avg(video_watch_time) AS avg_video_watch_time
FROM lesson_progress WHERE lesson_id = %(lesson)s
"""

# sections_read is a distinct union per student, so counting rows counts students.
SECTION_READERS: LiteralString = """
SELECT section, count(*) AS readers
FROM lesson_progress, unnest(sections_read) AS section
WHERE lesson_id = %(lesson)s
GROUP BY section
ORDER BY section
"""

# Per UTC day: the distinct students with a progress event, and the average of
# each one's highest progress reported that day, from the totals the
# lesson_progress_events trigger keeps (sql/012_lesson_daily_progress.sql).
PROGRESS_OVER_TIME: LiteralString = """
SELECT day, students AS active_students, best_sum / students AS avg_progress_percent
FROM lesson_daily_totals
WHERE lesson_id = %(lesson)s AND day >= %(since)s
ORDER BY day
"""

# From the per-quiz summaries the quiz_attempts triggers keep (sql/009): the
# score histogram gives counts, sums and the exact median (the k-th score is
# the smallest whose cumulative count reaches k; the median is the mean of the
# floor((n+1)/2)-th and the (floor(n/2)+1)-th), the per-student rows give
# students and first passes.
QUIZ_SUMMARY: LiteralString = """
WITH scores AS (
    SELECT score, attempts, passed, duration_sum,
           sum(attempts) OVER (ORDER BY score) AS reached
    FROM quiz_score_counts WHERE quiz_id = %(quiz)s
), totals AS (
    SELECT sum(attempts) AS n, sum(score * attempts) AS score_sum, sum(passed) AS passed,
           sum(duration_sum) AS duration_sum
    FROM scores
)
SELECT coalesce(totals.n, 0)::bigint AS attempts,
       (SELECT count(*) FROM quiz_student_summary WHERE quiz_id = %(quiz)s) AS students,
       totals.score_sum / totals.n AS avg_score,
       (SELECT (min(score) FILTER (WHERE reached >= floor((totals.n + 1) / 2))
                + min(score) FILTER (WHERE reached >= floor(totals.n / 2) + 1)) / 2
        FROM scores) AS median_score,
       totals.passed::double precision / totals.n AS pass_rate,
       totals.duration_sum::double precision / totals.n AS avg_duration_seconds,
       (SELECT avg(first_pass) FROM quiz_student_summary
        WHERE quiz_id = %(quiz)s AND first_pass IS NOT NULL) AS avg_attempts_to_pass
FROM totals
"""

# From the counts the quiz_attempts triggers keep (sql/009_report_summaries.sql): one row per
# (question, distinct answer text); the service turns each answer into its key.
ANSWER_DISTRIBUTION: LiteralString = """
SELECT question_id, answer, attempts
FROM quiz_answer_counts
WHERE quiz_id = %(quiz)s
"""

TEACHER_CONTENT: LiteralString = """
SELECT action, content_type, count(*) AS n
FROM content_activity WHERE teacher_id = %(teacher)s
GROUP BY 1, 2
"""

TEACHER_FEEDBACK: LiteralString = """
SELECT feedback_type, count(*) AS n, count(score) AS scored, sum(score) AS score_sum
FROM feedback WHERE teacher_id = %(teacher)s
GROUP BY 1
"""

TEACHER_LIVE: LiteralString = """
SELECT count(*) AS live_sessions,
       coalesce(sum(duration_seconds), 0) AS live_seconds,
       coalesce(sum(cardinality(polls_launched)), 0) AS polls_launched,
       coalesce(sum(messages_sent), 0) AS messages_sent
FROM live_class_engagement WHERE teacher_id = %(teacher)s
"""

FORUM_TRENDING: LiteralString = """
SELECT thread_id,
       count(*) AS actions,
       count(*) FILTER (WHERE action_type = 'post') AS posts,
       count(*) FILTER (WHERE action_type = 'reply') AS replies,
       count(*) FILTER (WHERE action_type = 'like') AS likes
FROM forum_activity
WHERE created_at >= %(since)s
GROUP BY thread_id
ORDER BY actions DESC, thread_id
LIMIT %(limit)s
"""

# Users by posts + replies in the window's UTC days, with the likes received
# in those days, from the per-(day, user) counts the forum_activity triggers
# keep (sql/011_forum_contributions.sql): a like is credited to its post's
# author when both are stored, whatever their order.
FORUM_CONTRIBUTORS: LiteralString = """
SELECT user_id, sum(posts)::bigint AS posts, sum(replies)::bigint AS replies,
       sum(likes_received)::bigint AS likes_received
FROM forum_contributions
WHERE day >= %(since)s
GROUP BY user_id
HAVING sum(posts + replies) > 0
ORDER BY sum(posts + replies) DESC, user_id
LIMIT %(limit)s
"""

# Minute buckets: the roll-up's own rows (a day at most: 1,440 buckets a type).
# date_trunc with an explicit zone ignores the session TimeZone.
ACTIVITY_MINUTES: LiteralString = """
SELECT date_trunc('minute', bucket_start, 'UTC') AS bucket_start, dimension AS type,
       sum(value)::bigint AS n
FROM activity_rollups
WHERE metric = 'events' AND bucket_start >= %(from)s AND bucket_start < %(to)s
GROUP BY 1, 2
ORDER BY 1, 2
"""

# Hour and day buckets: the totals the activity_rollups trigger keeps (sql/009).
ACTIVITY_TOTALS: LiteralString = """
SELECT bucket_start, dimension AS type, value AS n
FROM activity_event_totals
WHERE unit = %(unit)s AND bucket_start >= %(from)s AND bucket_start < %(to)s
  AND value <> 0
ORDER BY 1, 2
"""

COHORTS: LiteralString = """
SELECT date_trunc('week', started_at, 'UTC') AS week_start,
       count(*) AS students,
       count(*) FILTER (WHERE completed_at <= started_at + interval '7 days') AS within_1,
       count(*) FILTER (WHERE completed_at <= started_at + interval '14 days') AS within_2,
       count(*) FILTER (WHERE completed_at <= started_at + interval '28 days') AS within_4
FROM lesson_progress WHERE lesson_id = %(lesson)s
GROUP BY 1
ORDER BY 1
"""

IN_PROGRESS: LiteralString = """
SELECT lesson_id, progress_percent, last_accessed_at
FROM lesson_progress
WHERE student_id = %(student)s AND completed_at IS NULL
ORDER BY last_accessed_at DESC, lesson_id
LIMIT %(limit)s
"""

NOT_PASSED: LiteralString = """
SELECT quiz_id, count(*) AS attempts, max(score) AS best_score,
       max(submitted_at) AS last_submitted_at
FROM quiz_attempts
WHERE student_id = %(student)s
GROUP BY quiz_id
HAVING NOT bool_or(is_passed)
ORDER BY best_score DESC, last_submitted_at DESC, quiz_id
LIMIT %(limit)s
"""

# For each lesson the student completed (the most recent few), the latest
# completers of it; for each of those peers, the first lesson they started
# after completing it. Candidates the student has already started are dropped.
NEXT_LESSONS: LiteralString = """
WITH mine AS (
    SELECT lesson_id FROM lesson_progress
    WHERE student_id = %(student)s AND completed_at IS NOT NULL
    ORDER BY completed_at DESC, lesson_id
    LIMIT %(lessons)s
), peers AS (
    SELECT peer.student_id, peer.lesson_id, peer.completed_at
    FROM mine
    CROSS JOIN LATERAL (
        SELECT student_id, lesson_id, completed_at FROM lesson_progress
        WHERE lesson_id = mine.lesson_id AND completed_at IS NOT NULL
          AND student_id <> %(student)s
        ORDER BY completed_at DESC, student_id
        LIMIT %(peers)s
    ) AS peer
), next AS (
    SELECT following.lesson_id
    FROM peers
    CROSS JOIN LATERAL (
        SELECT lesson_id FROM lesson_progress
        WHERE student_id = peers.student_id AND started_at >= peers.completed_at
          AND lesson_id <> peers.lesson_id
        ORDER BY started_at, lesson_id
        LIMIT 1
    ) AS following
)
SELECT lesson_id, count(*) AS peers, (SELECT count(*) FROM peers) AS considered
FROM next
WHERE lesson_id NOT IN (SELECT lesson_id FROM lesson_progress WHERE student_id = %(student)s)
GROUP BY lesson_id
ORDER BY peers DESC, lesson_id
LIMIT %(limit)s
"""

# --- a person's overview: what their dashboard links to ---------------------------------
# Content the teacher created or edited, newest change first (content_activity_teacher_idx).
OVERVIEW_CONTENT: LiteralString = """
SELECT content_id, content_type, title, last_changed_at FROM (
    SELECT DISTINCT ON (content_id) content_id, content_type, title,
           "timestamp" AS last_changed_at
    FROM content_activity WHERE teacher_id = %(user)s
    ORDER BY content_id, "timestamp" DESC
) AS latest
ORDER BY last_changed_at DESC, content_id LIMIT %(limit)s
"""
OVERVIEW_SESSIONS: LiteralString = """
SELECT session_id, class_id, joined_at FROM live_class_engagement
WHERE teacher_id = %(user)s ORDER BY joined_at DESC, session_id LIMIT %(limit)s
"""
# The teacher's students (those the access rules let them read), most recently
# seen first: feedback from the teacher, progress in their lessons, attempts at
# their quizzes; each source read newest first and cut at the limit.
OVERVIEW_STUDENTS: LiteralString = """
WITH mine AS (SELECT DISTINCT content_id FROM content_activity WHERE teacher_id = %(user)s)
SELECT student_id, max(seen) AS last_seen_at FROM (
    (SELECT student_id, created_at AS seen FROM feedback
     WHERE teacher_id = %(user)s ORDER BY created_at DESC LIMIT %(limit)s)
    UNION ALL
    (SELECT lp.student_id, lp.last_accessed_at FROM lesson_progress AS lp
     JOIN mine ON lp.lesson_id = mine.content_id
     ORDER BY lp.last_accessed_at DESC LIMIT %(limit)s)
    UNION ALL
    (SELECT q.student_id, q.submitted_at FROM quiz_attempts AS q
     JOIN mine ON q.quiz_id = mine.content_id
     ORDER BY q.submitted_at DESC LIMIT %(limit)s)
) AS seen
GROUP BY student_id ORDER BY last_seen_at DESC, student_id LIMIT %(limit)s
"""
# A student's lessons and quizzes, newest first, with the content's latest title.
OVERVIEW_LESSONS: LiteralString = """
SELECT lp.lesson_id, t.title, lp.progress_percent, lp.completed_at, lp.last_accessed_at
FROM lesson_progress AS lp
LEFT JOIN LATERAL (
    SELECT title FROM content_activity WHERE content_id = lp.lesson_id
    ORDER BY "timestamp" DESC LIMIT 1
) AS t ON true
WHERE lp.student_id = %(user)s
ORDER BY lp.last_accessed_at DESC, lp.lesson_id LIMIT %(limit)s
"""
OVERVIEW_QUIZZES: LiteralString = """
SELECT q.quiz_id, t.title, q.best_score, q.attempts, q.passed, q.last_submitted_at
FROM (
    SELECT quiz_id, max(score) AS best_score, count(*) AS attempts,
           bool_or(is_passed) AS passed, max(submitted_at) AS last_submitted_at
    FROM quiz_attempts WHERE student_id = %(user)s GROUP BY quiz_id
    ORDER BY last_submitted_at DESC, quiz_id LIMIT %(limit)s
) AS q
LEFT JOIN LATERAL (
    SELECT title FROM content_activity WHERE content_id = q.quiz_id
    ORDER BY "timestamp" DESC LIMIT 1
) AS t ON true
ORDER BY q.last_submitted_at DESC, q.quiz_id
"""
