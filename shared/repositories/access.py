"""The facts the access rules ask PostgreSQL (SPEC 10), each one indexed lookup.

Read-only, on a small pool of its own (as the reports have), so a burst of
checks never waits behind the writes or the report scans. Which index serves
each query, with timings at ten million events, is in docs/access.md.
"""

from __future__ import annotations

import uuid
from typing import Any, LiteralString

from shared.repositories.postgres.pool import PooledRepository, shared_repository

# Interest of teacher T in student S: feedback from T to S, or S's progress in
# a lesson / attempt at a quiz that T created (content_activity by T naming
# it). Each branch starts from the student, whose rows are few, and probes
# content_activity by content_id (content_activity_content_teacher_idx).
TEACHER_INTEREST: LiteralString = """
SELECT EXISTS (
           SELECT 1 FROM feedback
           WHERE student_id = %(student)s AND teacher_id = %(teacher)s)
    OR EXISTS (
           SELECT 1 FROM lesson_progress AS lp
           JOIN content_activity AS c ON c.content_id = lp.lesson_id
           WHERE lp.student_id = %(student)s AND c.teacher_id = %(teacher)s)
    OR EXISTS (
           SELECT 1 FROM quiz_attempts AS q
           JOIN content_activity AS c ON c.content_id = q.quiz_id
           WHERE q.student_id = %(student)s AND c.teacher_id = %(teacher)s)
"""

TEACHER_CREATED: LiteralString = """
SELECT EXISTS (
    SELECT 1 FROM content_activity WHERE content_id = %(content)s AND teacher_id = %(teacher)s)
"""

TEACHER_JOINED: LiteralString = """
SELECT EXISTS (
    SELECT 1 FROM live_class_engagement
    WHERE session_id = %(session)s AND teacher_id = %(teacher)s)
"""

STUDENT_ATTEMPTED: LiteralString = """
SELECT EXISTS (
    SELECT 1 FROM quiz_attempts WHERE quiz_id = %(quiz)s AND student_id = %(student)s)
"""


class AccessRepository(PooledRepository):
    """Who is related to what, for the access rules; reads only."""

    # As for reports: a JIT compile would cost more than these lookups.
    SESSION_OPTIONS = "-c jit=off"

    def _exists(self, query: LiteralString, params: dict[str, Any]) -> bool:
        with self._pool.connection() as conn:
            row = conn.execute(query, params).fetchone()
        return bool(row and row[0])

    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool:
        """The student has activity on the teacher's content, or the teacher's feedback."""
        return self._exists(TEACHER_INTEREST, {"teacher": teacher_id, "student": student_id})

    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool:
        """The teacher created (or updated) this lesson, quiz or assignment."""
        return self._exists(TEACHER_CREATED, {"teacher": teacher_id, "content": content_id})

    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        return self._exists(TEACHER_JOINED, {"teacher": teacher_id, "session": session_id})

    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool:
        return self._exists(STUDENT_ATTEMPTED, {"student": student_id, "quiz": quiz_id})


def get_access() -> AccessRepository:
    """The process-wide access repository (its own small pool) for POSTGRES_DSN."""
    return shared_repository(AccessRepository)
