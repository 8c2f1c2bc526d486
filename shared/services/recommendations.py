"""Explainable, deterministic next steps for a student (SPEC section 8).

Three kinds of item, each scored in (0, 1] from the stored data alone (the
clock plays no part, so the same data always gives the same list):

- ``resume_lesson``: lessons started and not completed, most recently
  accessed first; the n-th (from 0) scores 0.6 + 0.4 * 0.5**n, so the lesson
  the student was just in comes first (1.0), then 0.8, 0.7, ...
- ``retry_quiz``: quizzes attempted and never passed, the closest to a pass
  (best score) first; the n-th scores 0.5 + 0.4 * 0.5**n (0.9, 0.7, 0.6, ...).
- ``next_lesson``: for the lessons the student completed, other students who
  completed the same lessons (the latest completers of each) and the first
  lesson each of them started afterwards; a candidate scores
  0.8 * (peers who went on to it) / (peers considered). Lessons the student
  has already started are never suggested.

The items are merged by score (highest first), then kind, then id.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from shared import limits
from shared.models.reports import Recommendation, Recommendations

Row = dict[str, Any]
SCORE_DIGITS = 4
KIND_ORDER = {"resume_lesson": 0, "retry_quiz": 1, "next_lesson": 2}


class RecommendationSource(Protocol):
    def recommendation_inputs(
        self, student_id: uuid.UUID, limit: int, lessons: int, peers: int
    ) -> tuple[list[Row], list[Row], list[Row]]: ...


def decay(base: float, span: float, rank: int) -> float:
    """base + span * 0.5**rank: first item highest, later ones approach base."""
    return round(base + span * 0.5**rank, SCORE_DIGITS)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def build(
    student_id: uuid.UUID,
    in_progress: list[Row],
    not_passed: list[Row],
    next_lessons: list[Row],
    limit: int,
) -> Recommendations:
    """Rank the three kinds of candidates (pure: the tests call it directly)."""
    items: list[Recommendation] = []
    for rank, row in enumerate(in_progress):
        items.append(
            Recommendation(
                kind="resume_lesson",
                id=row["lesson_id"],
                reason=(
                    f"You are {row['progress_percent']:g}% through this lesson; last opened "
                    f"{row['last_accessed_at']:%Y-%m-%d %H:%M} UTC."
                ),
                score=decay(0.6, 0.4, rank),
            )
        )
    for rank, row in enumerate(not_passed):
        items.append(
            Recommendation(
                kind="retry_quiz",
                id=row["quiz_id"],
                reason=(
                    f"Not passed yet after {_plural(row['attempts'], 'attempt')}; "
                    f"your best score is {row['best_score']:g}."
                ),
                score=decay(0.5, 0.4, rank),
            )
        )
    for row in next_lessons:
        peers, considered = int(row["peers"]), int(row["considered"])
        items.append(
            Recommendation(
                kind="next_lesson",
                id=row["lesson_id"],
                reason=(
                    f"{peers} of {_plural(considered, 'student')} who completed lessons you "
                    "completed started this lesson next."
                ),
                score=round(0.8 * peers / considered, SCORE_DIGITS),
            )
        )
    items.sort(key=lambda item: (-item.score, KIND_ORDER[item.kind], str(item.id)))
    return Recommendations(student_id=student_id, items=items[:limit])


def recommend(student_id: uuid.UUID, limit: int, source: RecommendationSource) -> Recommendations:
    """The student's top ``limit`` recommendations."""
    in_progress, not_passed, next_lessons = source.recommendation_inputs(
        student_id,
        limit,
        limits.RECOMMENDATIONS_SEED_LESSONS,
        limits.RECOMMENDATIONS_PEER_SAMPLE,
    )
    return build(student_id, in_progress, not_passed, next_lessons, limit)
