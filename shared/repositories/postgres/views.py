"""The real-time views' fallback reads: what rebuilds a view Redis lost.

Each read is one indexed query returning plain rows; the views
(shared/services/realtime.py) shape them as Redis would have.
"""

from __future__ import annotations

import uuid

from shared.repositories.postgres.pool import PooledRepository, Row


class ViewReads(PooledRepository):
    """The merged rows and events the real-time views are rebuilt from."""

    def lesson_progress_for_student(self, student_id: uuid.UUID) -> list[Row]:
        """The student's merged progress in every lesson, most recently accessed first."""
        return self._all(
            "SELECT * FROM lesson_progress WHERE student_id = %s "
            "ORDER BY last_accessed_at DESC, lesson_id",
            (student_id,),
        )

    def lesson_progress_for_lesson(self, lesson_id: uuid.UUID, limit: int | None) -> list[Row]:
        """Every student's merged progress in a lesson (``limit``: the most recently active)."""
        return self._all(
            "SELECT * FROM lesson_progress WHERE lesson_id = %s "
            "ORDER BY last_accessed_at DESC, student_id LIMIT %s",
            (lesson_id, limit),
        )

    def live_session(self, session_id: uuid.UUID) -> list[Row]:
        """Every teacher's merged engagement in a live session, in joining order."""
        return self._all(
            "SELECT * FROM live_class_engagement WHERE session_id = %s "
            "ORDER BY joined_at, teacher_id",
            (session_id,),
        )

    def quiz_attempts_for_quiz(self, quiz_id: uuid.UUID) -> list[Row]:
        """Every stored attempt at a quiz (the leaderboard's source)."""
        return self._all(
            "SELECT quiz_id, student_id, attempt_id, score, submitted_at FROM quiz_attempts "
            "WHERE quiz_id = %s",
            (quiz_id,),
        )

    def notifications_for_user(self, user_id: uuid.UUID, limit: int) -> list[Row]:
        """Replies to and likes of the user's posts by other users, newest first."""
        return self._all(
            """
            WITH mine AS (
                SELECT post_id FROM forum_activity
                WHERE user_id = %(user)s AND action_type IN ('post', 'reply')
            )
            SELECT f.action_type AS type,
                   CASE WHEN f.action_type = 'reply' THEN f.parent_post_id ELSE f.post_id END
                       AS post_id,
                   f.thread_id, f.user_id AS actor_id, f.created_at, f.event_id
            FROM forum_activity f
            WHERE f.user_id <> %(user)s
              AND ((f.action_type = 'reply' AND f.parent_post_id IN (SELECT post_id FROM mine))
                OR (f.action_type = 'like' AND f.post_id IN (SELECT post_id FROM mine)))
            ORDER BY f.created_at DESC, f.event_id DESC
            LIMIT %(limit)s
            """,
            {"user": user_id, "limit": limit},
        )
