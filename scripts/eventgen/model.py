"""What a simulated platform is made of: entities, texts, shares and distributions.

The one definition both generators draw from: ``World`` (one event at a time,
for the simulator, the benchmarks and the tests) and ``bulk`` (numpy columns,
for the bulk loader).
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.models.events import EVENT_TYPES

Event = dict[str, Any]
T = TypeVar("T")


# Share of each event type in the stream; learners generate most of it.
DEFAULT_MIX: Mapping[str, float] = {
    "lesson_progress": 0.42,
    "quiz_attempt": 0.16,
    "forum_activity": 0.24,
    "content_activity": 0.04,
    "feedback": 0.08,
    "live_class_engagement": 0.06,
}

# How far a duplicate or a late event may land from its place in the
# stream, in batches: close enough to share a batch sometimes, far enough to
# land in another request often.
DUPLICATE_SPREAD_BATCHES = 3
LATE_SPREAD_BATCHES = 5

# --- how people behave: the shares and ranges every generator uses -----------------

# When: busiest at PEAK_HOUR UTC, DAY_SWING sets how much (four times busier
# at the peak than twelve hours away from it).
PEAK_HOUR = 14
DAY_SWING = 0.6

# Zipf exponents: how unevenly activity spreads over each kind of entity.
STUDENT_SKEW = 0.75
TEACHER_SKEW = 1.0
FORUM_SKEW = 0.9  # students and teachers in the forum
POPULARITY_SKEW = 0.8  # lessons and quizzes
SKILL = (0.35, 0.95)  # a student's chance of answering a question right, at first
CLASSES_PER_TEACHER = (1, 3)
CLASSES_PER_STUDENT = (1, 3)

# Lessons: sections (then "summary") and video length.
SECTIONS_PER_LESSON = (3, 9)
VIDEO_SECONDS = (300, 2400)
CONTINUE_LESSON = 0.75  # a progress event is on a lesson already started
STARTED_BEFORE_SECONDS = 600  # a lesson's first event comes up to this long after its start
PROGRESS_STEP = (4.0, 35.0)  # percentage points per progress event
FINISH_FROM = 97.0  # from here a student finishes with FINISH_CHANCE
FINISH_CHANCE = 0.7
WATCH_FACTOR = (0.8, 1.3)  # of the video, at the progress reached (rewatching)

# Quizzes: questions and attempts.
QUESTIONS_PER_QUIZ = (5, 12)
QUESTION_KINDS: Mapping[str, float] = {"single": 6, "multiple": 2, "number": 2, "text": 1}
PASS_SHARE = 0.7  # of the questions, to pass
PRACTICE_GAIN = 0.08  # each attempt's chance per question over the one before
BEST_CHANCE = 0.98
PARTIAL_CREDIT = 0.5  # chance of half a point for a wrong multiple-choice answer
SECONDS_PER_QUESTION = (60, 90)  # an attempt lasts from the first to questions x the second
MAX_RETRIES = 8  # a student gives up on a quiz after this many failed attempts
RETRY_CHANCE = 0.6  # a student with a quiz to retry retries it rather than take another
STUDIED_QUIZ = 0.7  # a new quiz is that of a lesson the student studies

# Forum: a new thread, a reply or a like.
NEW_THREAD = 0.2
REPLY = 0.4  # then the rest are likes
REPLY_TO_OPENING = 0.6  # else to any post of the thread
LIKE_ANY = 0.5  # a like goes to any post of the thread, else to its opening post
ESSAY = 0.05  # a reply repeated 5 to 40 times
RECENT_THREADS = 100  # threads still attracting activity
THREAD_WEIGHT_CAP = 25  # so one early thread does not take over the forum

# Teachers: content, feedback, live sessions.
UPDATE_OWN = 0.7  # a content event updates an item of the teacher's own
NEW_CONTENT: Mapping[str, float] = {"lesson": 4, "quiz": 2, "assignment": 4}
NEW_CONTENT_WEIGHT = 0.5  # popularity of a lesson or quiz created in the window
FEEDBACK_TYPES: Mapping[str, float] = {"text": 6, "rubric": 3, "audio": 1}
ROSTER_PARETO = 1.2  # teachers give feedback to some of their students far more
SECOND_PASS = 0.15  # feedback on the student's previous submission again
TEXT_SCORED = 0.5  # text feedback with a score (rubric always, audio never)
FEEDBACK_SCORE = (40.0, 100.0)
SESSION_MINUTES = (20, 90)
CO_TEACHER = 0.15  # a second teacher joins the session...
CO_TEACHER_JOINS_MINUTES = (2, 15)  # ...this long after it started, and leaves with it
MID_SESSION_UPDATE = 0.3  # a live event is a snapshot of a running session
POLL_MINUTES = 15  # at most one poll per this many minutes
POLL_CHANCE = 0.8

SUBJECTS = {
    "Algebra": ["Linear equations", "Quadratic equations", "Inequalities", "Functions"],
    "Geometry": ["Triangles", "Circles", "Similarity", "Coordinate geometry"],
    "Biology": ["Cells", "Photosynthesis", "Genetics", "Ecosystems"],
    "Chemistry": ["Atoms", "Chemical bonds", "Acids and bases", "Reaction rates"],
    "Physics": ["Forces", "Energy", "Waves", "Electric circuits"],
    "History": ["The Industrial Revolution", "Ancient Rome", "The Cold War"],
    "Literature": ["Poetry analysis", "Narrative voice", "Shakespeare's sonnets"],
    "Computer science": ["Loops", "Recursion", "Sorting algorithms", "Databases"],
}
SECTION_NAMES = [
    "introduction",
    "key-ideas",
    "worked-example-1",
    "worked-example-2",
    "common-mistakes",
    "practice",
    "challenge",
    "real-world-links",
    "further-reading",
]  # and every lesson ends with "summary"
FORUM_QUESTIONS = [
    "What is {topic} about?",
    "How would you explain {topic} to a friend?",
    "I'm stuck on the {topic} practice set, question {n}. Any hints?",
    "Is there a quicker way to do the {topic} worked example?",
    "Why does the second step of the {topic} example work?",
    "Can someone check my answer for {topic} question {n}?",
    "Quelle est la différence entre les deux méthodes pour {topic} ?",
    "Does anyone have good extra resources on {topic}? 📚",
]
FORUM_REPLIES = [
    "Try drawing it out first; it made {topic} click for me.",
    "Step {n} uses the rule from the key ideas section.",
    "I had the same problem. Re-watching the video at 3:{n:02d} helped.",
    "Your answer looks right, but check the units.",
    "Thanks, that helped a lot! 🙏",
    "Good question. The summary section of {topic} covers it.",
    "Der Trick ist, zuerst zu vereinfachen.",
    "Here's how I'd approach it: break {topic} into smaller steps, then test each one.",
]
CHANGES = [
    "Fixed a typo in section {n}",
    "Added {n} practice questions",
    "Re-recorded the introduction video",
    "Clarified the worked example",
    "Updated the rubric and due date",
    "Replaced a broken link in further reading",
    "Reordered sections for a smoother progression",
]
FEEDBACK_TEXTS = [
    "Good work on {topic}; check step {n} again.",
    "Clear reasoning. Show your working for question {n} next time.",
    "You have the main idea of {topic}. Review the common mistakes section.",
    "Excellent! Try the challenge problems on {topic}.",
    "Please redo question {n}; the method is right but the arithmetic slipped.",
    "Rubric: understanding {n}/4, communication 3/4, accuracy 3/4.",
]
# Offsets users' clients report their local time in: the same instant, many
# spellings, as a real platform receives them.
UTC_OFFSETS_MINUTES = [0, 0, 0, 60, 120, -300, -240, -420, 330, 480, 540, 600]


@dataclass(frozen=True)
class Config:
    """What to simulate; every field has the simulator's default."""

    students: int = 200
    teachers: int = 20
    lessons: int = 30
    quizzes: int = 15
    events: int = 20_000
    batch: int = 100
    duplicates: float = 0.05
    shuffle: float = 0.1
    seed: int = 1
    days: float = 14.0
    # End of the simulated window; defaults to the current time when the
    # stream is generated. Tests pin it for exact reproducibility.
    now: datetime | None = None
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))

    def __post_init__(self) -> None:
        for name in ("students", "teachers", "lessons", "quizzes", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.events < 0:
            raise ValueError("events must not be negative")
        for name in ("duplicates", "shuffle"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1")
        if self.days <= 0:
            raise ValueError("days must be positive")
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("now must carry a time zone")
        unknown = sorted(set(self.mix) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"mix names unknown event types: {', '.join(unknown)}")
        if any(w < 0 for w in self.mix.values()) or not any(w > 0 for w in self.mix.values()):
            raise ValueError("mix weights must be non-negative, and at least one positive")

    @property
    def duplicate_count(self) -> int:
        return round(self.events * self.duplicates)

    @property
    def total_deliveries(self) -> int:
        """Events the stream yields: each unique event once, plus the re-sends."""
        return self.events + self.duplicate_count


class Weighted(Generic[T]):
    """Items drawn with fixed weights (O(log n) per draw)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> T:
        point = rng.random() * self.cumulative[-1]
        return self.items[min(bisect_left(self.cumulative, point), len(self.items) - 1)]


def zipf_weights(count: int, rng: random.Random, exponent: float) -> list[float]:
    """Weights 1/rank**exponent, the ranks dealt out at random."""
    weights = [1.0 / (rank**exponent) for rank in range(1, count + 1)]
    rng.shuffle(weights)
    return weights


def zipf(items: Sequence[T], rng: random.Random, exponent: float = 0.9) -> Weighted[T]:
    """``items`` drawn with Zipf-like skew: a few are picked far more than the rest."""
    return Weighted(items, zipf_weights(len(items), rng, exponent))


def busy_hours(
    u: Any, start_of_day: float, days: float, sin: Callable[[Any], Any] = math.sin
) -> Any:
    """Where positions ``u`` in [0, 1] of the window move so that the hours are busy by day.

    A monotone warp (sorted positions stay sorted): the density becomes
    1 / (1 - DAY_SWING cos(time of day - PEAK_HOUR)). ``start_of_day`` is the
    window's start as a fraction of its UTC day. Works on floats (``math.sin``)
    and on numpy arrays (``numpy.sin``).
    """
    tau = 2.0 * math.pi
    peak = PEAK_HOUR / 24

    def wave(x: Any) -> Any:
        return sin(tau * (start_of_day + days * x - peak))

    return u - DAY_SWING * (wave(u) - wave(0.0)) / (tau * days)
