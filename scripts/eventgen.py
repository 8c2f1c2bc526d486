"""A deterministic, coherent stream of activity events (SPEC section 3).

Pure and network-free, so the simulator, benchmarks and tests share it.
A small world of students, teachers, classes, lessons, quizzes and forum
threads evolves over a time window; every step emits one event whose fields
follow from the world's state (progress only rises, attempts count up,
replies answer existing posts, sessions end after they start). Activity is
skewed (Zipf-like): a few students, teachers, lessons and threads account
for much of it.

Delivery is then made imperfect the way real clients are: a fraction of
events is re-sent with the same ``event_id`` (a retry), and a fraction
arrives late (out of order). Both the world and the delivery are
reproducible from the seed alone (given the same ``now``).

    from eventgen import Config, generate, batches
    for batch in batches(generate(Config(events=1000, seed=7)), 100): ...
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

Event = dict[str, Any]
T = TypeVar("T")

EVENT_TYPES = (
    "lesson_progress",
    "quiz_attempt",
    "forum_activity",
    "content_activity",
    "feedback",
    "live_class_engagement",
)

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
# A student gives up on a quiz after this many failed attempts.
MAX_RETRIES = 8
LATE_SPREAD_BATCHES = 5

_SUBJECTS = {
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
_QUESTIONS = [
    "What is {topic} about?",
    "How would you explain {topic} to a friend?",
    "I'm stuck on the {topic} practice set, question {n}. Any hints?",
    "Is there a quicker way to do the {topic} worked example?",
    "Why does the second step of the {topic} example work?",
    "Can someone check my answer for {topic} question {n}?",
    "Quelle est la différence entre les deux méthodes pour {topic} ?",
    "Does anyone have good extra resources on {topic}? 📚",
]
_REPLIES = [
    "Try drawing it out first; it made {topic} click for me.",
    "Step {n} uses the rule from the key ideas section.",
    "I had the same problem. Re-watching the video at 3:{n:02d} helped.",
    "Your answer looks right, but check the units.",
    "Thanks, that helped a lot! 🙏",
    "Good question. The summary section of {topic} covers it.",
    "Der Trick ist, zuerst zu vereinfachen.",
    "Here's how I'd approach it: break {topic} into smaller steps, then test each one.",
]
_CHANGES = [
    "Fixed a typo in section {n}",
    "Added {n} practice questions",
    "Re-recorded the introduction video",
    "Clarified the worked example",
    "Updated the rubric and due date",
    "Replaced a broken link in further reading",
    "Reordered sections for a smoother progression",
]
_FEEDBACK = [
    "Good work on {topic}; check step {n} again.",
    "Clear reasoning. Show your working for question {n} next time.",
    "You have the main idea of {topic}. Review the common mistakes section.",
    "Excellent! Try the challenge problems on {topic}.",
    "Please redo question {n}; the method is right but the arithmetic slipped.",
    "Rubric: understanding {n}/4, communication 3/4, accuracy 3/4.",
]
# Offsets users' clients report their local time in: the same instant, many
# spellings, as a real platform receives them.
_UTC_OFFSETS_MINUTES = [0, 0, 0, 60, 120, -300, -240, -420, 330, 480, 540, 600]


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


# --- the world -----------------------------------------------------------------------


@dataclass
class Lesson:
    lesson_id: str
    teacher_id: str
    title: str
    topic: str
    sections: list[str]
    video_seconds: int
    quiz_id: str | None = None


@dataclass
class Question:
    question_id: str
    kind: str  # "single", "multiple", "number", "text"
    correct: Any


@dataclass
class Quiz:
    quiz_id: str
    teacher_id: str
    title: str
    topic: str
    questions: list[Question]

    @property
    def pass_score(self) -> float:
        return 0.7 * len(self.questions)


@dataclass
class Progress:
    started_at: datetime
    progress: float = 0.0
    watch_seconds: int = 0
    completed_at: datetime | None = None


@dataclass
class Post:
    post_id: str
    author_id: str
    created_at: datetime


@dataclass
class Thread:
    thread_id: str
    topic: str
    posts: list[Post]
    actions: int = 1


@dataclass
class LiveSession:
    session_id: str
    class_id: str
    teacher_id: str
    joined_at: datetime
    ends_at: datetime
    polls: list[str] = field(default_factory=list)
    messages: int = 0


@dataclass(order=True)
class Pending:
    """A follow-up event due at ``due`` (a session's end, a co-teacher joining)."""

    due: datetime
    seq: int
    kind: str = field(compare=False)
    session: LiveSession = field(compare=False)


class World:
    """The platform's state; ``step(t)`` advances it and returns one event at time t."""

    def __init__(self, config: Config, rng: random.Random) -> None:
        self.rng = rng
        self.students = [self.new_id() for _ in range(config.students)]
        self.teachers = [self.new_id() for _ in range(config.teachers)]
        self.offsets = {
            user: timezone(timedelta(minutes=rng.choice(_UTC_OFFSETS_MINUTES)))
            for user in self.students + self.teachers
        }
        self.skill = {s: rng.uniform(0.35, 0.95) for s in self.students}
        self.active_students = zipf(self.students, rng, exponent=0.75)
        self.active_teachers = zipf(self.teachers, rng, exponent=1.0)
        self.forum_users = zipf(self.students + self.teachers, rng)

        # Classes: each teacher runs one to three; each student is in one to three.
        self.classes: dict[str, list[str]] = {t: [] for t in self.teachers}
        self.class_teacher: dict[str, str] = {}
        for teacher in self.teachers:
            for _ in range(rng.randint(1, 3)):
                class_id = self.new_id()
                self.classes[teacher].append(class_id)
                self.class_teacher[class_id] = teacher
        all_classes = list(self.class_teacher)
        self.teacher_students: dict[str, list[str]] = {t: [] for t in self.teachers}
        for student in self.students:
            for class_id in rng.sample(all_classes, k=min(len(all_classes), rng.randint(1, 3))):
                roster = self.teacher_students[self.class_teacher[class_id]]
                if student not in roster:
                    roster.append(student)

        # The catalogue; popularity weights stay aligned with these lists.
        self.owned: dict[str, list[Lesson | Quiz]] = {}  # teacher -> their content
        self.lessons: list[Lesson] = []
        self.lesson_by_id: dict[str, Lesson] = {}
        self.quizzes: list[Quiz] = []
        self.quiz_by_id: dict[str, Quiz] = {}
        for _ in range(config.lessons):
            self.add_lesson(self.active_teachers.pick(rng))
        for i in range(config.quizzes):
            lesson = self.lessons[i % len(self.lessons)]
            quiz = self.add_quiz(lesson.teacher_id, lesson.topic)
            if lesson.quiz_id is None:
                lesson.quiz_id = quiz.quiz_id
        self.lesson_weights = zipf_weights(len(self.lessons), rng, exponent=0.8)
        self.quiz_weights = zipf_weights(len(self.quizzes), rng, exponent=0.8)
        self.lesson_popularity = Weighted(self.lessons, self.lesson_weights)
        self.quiz_popularity = Weighted(self.quizzes, self.quiz_weights)

        self.progress: dict[tuple[str, str], Progress] = {}
        self.in_progress: dict[str, list[str]] = {}  # student -> lesson ids, latest last
        self.attempts: dict[str, dict[str, int]] = {}  # student -> quiz -> attempts
        self.passed: set[tuple[str, str]] = set()
        self.threads: list[Thread] = []
        self.thread_by_id: dict[str, Thread] = {}
        self.likes: set[tuple[str, str]] = set()
        self.submissions: dict[str, list[str]] = {}
        self.pending: list[Pending] = []
        self.pending_seq = itertools.count()
        self.live_active: list[LiveSession] = []

    # -- helpers ------------------------------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def stamp(self, moment: datetime, user: str) -> str:
        """ISO 8601 in the user's own UTC offset (always with a zone)."""
        local = moment.astimezone(self.offsets[user])
        return local.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def text(self, templates: Sequence[str], topic: str) -> str:
        return self.rng.choice(templates).format(topic=topic, n=self.rng.randint(1, 9))

    def add_lesson(self, teacher: str) -> Lesson:
        subject = self.rng.choice(list(_SUBJECTS))
        topic = self.rng.choice(_SUBJECTS[subject])
        count = self.rng.randint(3, len(SECTION_NAMES))
        lesson = Lesson(
            lesson_id=self.new_id(),
            teacher_id=teacher,
            title=f"{subject}: {topic}",
            topic=topic,
            sections=[*SECTION_NAMES[:count], "summary"],
            video_seconds=self.rng.randint(300, 2400),
        )
        self.lessons.append(lesson)
        self.lesson_by_id[lesson.lesson_id] = lesson
        self.owned.setdefault(teacher, []).append(lesson)
        return lesson

    def add_quiz(self, teacher: str, topic: str) -> Quiz:
        questions = []
        for _ in range(self.rng.randint(5, 12)):
            kind = self.rng.choices(["single", "multiple", "number", "text"], [6, 2, 2, 1])[0]
            correct: Any
            if kind == "single":
                correct = self.rng.choice("abcd")
            elif kind == "multiple":
                correct = sorted(self.rng.sample("abcde", k=self.rng.randint(2, 3)))
            elif kind == "number":
                correct = self.rng.randint(-20, 120)
            else:
                correct = self.rng.choice(["mitochondria", "gradient", "velocity", "1066"])
            questions.append(Question(self.new_id(), kind, correct))
        quiz = Quiz(self.new_id(), teacher, f"{topic} check-up", topic, questions)
        self.quizzes.append(quiz)
        self.quiz_by_id[quiz.quiz_id] = quiz
        self.owned.setdefault(teacher, []).append(quiz)
        return quiz

    def answer(self, question: Question, right: bool) -> Any:
        if right:
            return question.correct
        if question.kind == "single":
            return self.rng.choice([c for c in "abcd" if c != question.correct])
        if question.kind == "multiple":
            picked = question.correct
            while picked == question.correct:  # a wrong answer differs from the right one
                picked = sorted(self.rng.sample("abcde", k=self.rng.randint(1, 4)))
            return picked
        if question.kind == "number":
            return question.correct + self.rng.choice([-3, -1, 1, 2, 10])
        return self.rng.choice(["not sure", "energy", "osmosis", "1492"])

    # -- one step -----------------------------------------------------------------------

    def step(self, now: datetime, kind: str) -> Event:
        makers = {
            "lesson_progress": self.lesson_progress,
            "quiz_attempt": self.quiz_attempt,
            "forum_activity": self.forum_activity,
            "content_activity": self.content_activity,
            "feedback": self.feedback,
            "live_class_engagement": self.live_class_engagement,
        }
        event = makers[kind](now)
        return {"type": kind, "event_id": self.new_id(), **event}

    def lesson_progress(self, now: datetime) -> Event:
        rng = self.rng
        student = self.active_students.pick(rng)
        started = self.in_progress.setdefault(student, [])
        if started and (rng.random() < 0.75 or len(started) >= len(self.lessons)):
            # Mostly the lesson they were on last, sometimes an older one.
            lesson_id = started[-1] if rng.random() < 0.6 else rng.choice(started)
            lesson = self.lesson_by_id[lesson_id]
        else:
            lesson = self.lesson_popularity.pick(rng)
            if lesson.lesson_id in started:
                started.remove(lesson.lesson_id)
            started.append(lesson.lesson_id)
        state = self.progress.get((student, lesson.lesson_id))
        if state is None:
            state = Progress(started_at=now - timedelta(seconds=rng.randint(0, 600)))
            self.progress[(student, lesson.lesson_id)] = state
        if state.completed_at is None:
            state.progress = min(100.0, round(state.progress + rng.uniform(4, 35), 1))
            if state.progress >= 97.0 and rng.random() < 0.7:
                state.progress = 100.0
            if state.progress >= 100.0:
                state.completed_at = now
        # Watching never goes backwards; rewatching can exceed the video's length.
        watched = int(state.progress / 100 * lesson.video_seconds * rng.uniform(0.8, 1.3))
        state.watch_seconds = max(state.watch_seconds, watched)
        read = math.ceil(state.progress / 100 * len(lesson.sections))
        return {
            "student_id": student,
            "lesson_id": lesson.lesson_id,
            "started_at": self.stamp(state.started_at, student),
            "completed_at": (
                self.stamp(state.completed_at, student) if state.completed_at else None
            ),
            "progress_percent": float(state.progress),
            "video_watch_time": state.watch_seconds,
            "sections_read": lesson.sections[: max(1, read)],
            "last_accessed_at": self.stamp(now, student),
        }

    def quiz_attempt(self, now: datetime) -> Event:
        rng = self.rng
        # Someone with a quiz left to take: a student who passed everything
        # (or gave up) does something else, as real students do.
        for _ in range(20):
            student = self.active_students.pick(rng)
            quiz = self.next_quiz(student)
            if quiz is not None:
                break
        else:
            student = self.active_students.pick(rng)
            quiz = self.quiz_popularity.pick(rng)
        key = (student, quiz.quiz_id)
        taken = self.attempts.setdefault(student, {})
        number = taken[quiz.quiz_id] = taken.get(quiz.quiz_id, 0) + 1
        # Practice helps: each attempt is a little better on average.
        chance = min(0.98, self.skill[student] + 0.08 * (number - 1))
        answers: dict[str, Any] = {}
        score = 0.0
        for question in quiz.questions:
            right = rng.random() < chance
            answers[question.question_id] = self.answer(question, right)
            if right:
                score += 1.0
            elif question.kind == "multiple" and rng.random() < 0.5:
                score += 0.5  # partial credit
        passed = score >= quiz.pass_score
        if passed:
            self.passed.add(key)
        return {
            "student_id": student,
            "quiz_id": quiz.quiz_id,
            "attempt_id": self.new_id(),
            "attempt_number": number,
            "answers": answers,
            "score": score,
            "submitted_at": self.stamp(now, student),
            "duration_seconds": rng.randint(60, 90 * len(quiz.questions)),
            "is_passed": passed,
        }

    def next_quiz(self, student: str) -> Quiz | None:
        """Retry one not yet passed, else a new one (those of lessons studied first)."""
        rng = self.rng
        taken = self.attempts.setdefault(student, {})
        retry = [q for q, n in taken.items() if (student, q) not in self.passed and n < MAX_RETRIES]
        if retry and rng.random() < 0.6:
            return self.quiz_by_id[rng.choice(retry)]
        if len(taken) < len(self.quizzes):
            studied = [
                quiz_id
                for lesson_id in self.in_progress.get(student, [])
                if (quiz_id := self.lesson_by_id[lesson_id].quiz_id) and quiz_id not in taken
            ]
            if studied and rng.random() < 0.7:
                return self.quiz_by_id[rng.choice(studied)]
            for _ in range(8):  # by popularity, among those not taken yet
                quiz = self.quiz_popularity.pick(rng)
                if quiz.quiz_id not in taken:
                    return quiz
            return rng.choice([quiz for quiz in self.quizzes if quiz.quiz_id not in taken])
        retake = [q for q, n in taken.items() if (student, q) in self.passed and n < 3]
        if retake and rng.random() < 0.3:
            return self.quiz_by_id[rng.choice(retake)]  # to improve a passing score
        return self.quiz_by_id[rng.choice(retry)] if retry else None

    def forum_activity(self, now: datetime) -> Event:
        rng = self.rng
        user = self.forum_users.pick(rng)
        roll = rng.random()
        if self.threads and roll >= 0.2:
            thread = self.pick_thread()
            if roll < 0.6:
                return self.reply(now, user, thread)
            post = rng.choice(thread.posts) if rng.random() < 0.5 else thread.posts[0]
            if post.author_id != user and (user, post.post_id) not in self.likes:
                self.likes.add((user, post.post_id))
                thread.actions += 1
                return {
                    "user_id": user,
                    "post_id": post.post_id,
                    "thread_id": thread.thread_id,
                    "action_type": "like",
                    "created_at": self.stamp(now, user),
                }
            return self.reply(now, user, thread)  # one can't like one's own post
        topic = rng.choice(self.lessons).topic
        post = Post(self.new_id(), user, now)
        thread = Thread(self.new_id(), topic, [post])
        self.threads.append(thread)
        self.thread_by_id[thread.thread_id] = thread
        return {
            "user_id": user,
            "post_id": post.post_id,
            "thread_id": thread.thread_id,
            "action_type": "post",
            "content": self.text(_QUESTIONS, topic),
            "created_at": self.stamp(now, user),
        }

    def pick_thread(self) -> Thread:
        """Preferential attachment: busy threads attract more activity."""
        recent = self.threads[-100:]
        # Capped, so one early thread does not take over the whole forum.
        weights = [float(min(thread.actions, 25)) for thread in recent]
        return self.rng.choices(recent, weights)[0]

    def reply(self, now: datetime, user: str, thread: Thread) -> Event:
        parent = thread.posts[0] if self.rng.random() < 0.6 else self.rng.choice(thread.posts)
        post = Post(self.new_id(), user, now)
        thread.posts.append(post)
        thread.actions += 1
        content = self.text(_REPLIES, thread.topic)
        if self.rng.random() < 0.05:
            content = " ".join([content] * self.rng.randint(5, 40))  # the occasional essay
        return {
            "user_id": user,
            "post_id": post.post_id,
            "thread_id": thread.thread_id,
            "action_type": "reply",
            "content": content,
            "created_at": self.stamp(now, user),
            "parent_post_id": parent.post_id,
        }

    def content_activity(self, now: datetime) -> Event:
        rng = self.rng
        teacher = self.active_teachers.pick(rng)
        owned = self.owned.get(teacher, [])
        if owned and rng.random() < 0.7:
            item = rng.choice(owned)
            lesson_update = isinstance(item, Lesson)
            return {
                "teacher_id": teacher,
                "content_id": item.lesson_id if isinstance(item, Lesson) else item.quiz_id,
                "content_type": "lesson" if lesson_update else "quiz",
                "action": "updated",
                "timestamp": self.stamp(now, teacher),
                "title": item.title,
                "changes_summary": self.text(_CHANGES, item.topic),
            }
        content_type = rng.choices(["lesson", "quiz", "assignment"], [4, 2, 4])[0]
        if content_type == "lesson":
            # New lessons join the catalogue: students can start them from now on.
            lesson = self.add_lesson(teacher)
            self.lesson_weights.append(0.5)  # new: moderately popular
            self.lesson_popularity = Weighted(self.lessons, self.lesson_weights)
            content_id, title = lesson.lesson_id, lesson.title
        elif content_type == "quiz":
            quiz = self.add_quiz(teacher, rng.choice(self.lessons).topic)
            self.quiz_weights.append(0.5)
            self.quiz_popularity = Weighted(self.quizzes, self.quiz_weights)
            content_id, title = quiz.quiz_id, quiz.title
        else:
            topic = rng.choice(self.lessons).topic
            content_id, title = self.new_id(), f"Assignment: {topic} problem set"
        return {
            "teacher_id": teacher,
            "content_id": content_id,
            "content_type": content_type,
            "action": "created",
            "timestamp": self.stamp(now, teacher),
            "title": title,
        }

    def feedback(self, now: datetime) -> Event:
        rng = self.rng
        teacher = self.active_teachers.pick(rng)
        roster = self.teacher_students[teacher] or self.students
        student = roster[min(int(rng.paretovariate(1.2)) - 1, len(roster) - 1)]
        previous = self.submissions.setdefault(student, [])
        if previous and rng.random() < 0.15:
            submission = previous[-1]  # a second pass over the same work
        else:
            submission = self.new_id()
            previous.append(submission)
        feedback_type = rng.choices(["text", "rubric", "audio"], [6, 3, 1])[0]
        event: Event = {
            "teacher_id": teacher,
            "student_id": student,
            "submission_id": submission,
            "feedback_text": self.text(_FEEDBACK, rng.choice(self.lessons).topic),
            "feedback_type": feedback_type,
            "created_at": self.stamp(now, teacher),
        }
        if feedback_type == "rubric" or (feedback_type == "text" and rng.random() < 0.5):
            event["score"] = round(rng.uniform(40, 100), 1)
        return event

    def live_class_engagement(self, now: datetime) -> Event:
        if self.pending and self.pending[0].due <= now:
            due = heapq.heappop(self.pending)
            session = due.session
            if due.kind == "join":
                self.schedule("leave", session.ends_at, session)
                return self.live_join(session)
            return self.live_snapshot(session, left_at=due.due)
        if self.live_active and self.rng.random() < 0.3:
            # A mid-session update: still in the class, more polls and messages.
            session = self.rng.choice(self.live_active)
            if session.joined_at <= now < session.ends_at:
                return self.live_snapshot(session, left_at=None, until=now)
        return self.start_session(now)

    def start_session(self, now: datetime) -> Event:
        rng = self.rng
        teacher = self.active_teachers.pick(rng)
        class_id = rng.choice(self.classes[teacher])
        session = LiveSession(
            session_id=self.new_id(),
            class_id=class_id,
            teacher_id=teacher,
            joined_at=now,
            ends_at=now + timedelta(minutes=rng.randint(20, 90)),
        )
        self.schedule("leave", session.ends_at, session)
        if len(self.teachers) > 1 and rng.random() < 0.15:
            # A co-teacher joins a few minutes in and leaves with the class.
            co_teacher = rng.choice([t for t in self.teachers if t != teacher])
            co_session = LiveSession(
                session_id=session.session_id,
                class_id=class_id,
                teacher_id=co_teacher,
                joined_at=now + timedelta(minutes=rng.randint(2, 15)),
                ends_at=session.ends_at,
            )
            self.schedule("join", co_session.joined_at, co_session)
        return self.live_join(session)

    def schedule(self, kind: str, due: datetime, session: LiveSession) -> None:
        heapq.heappush(self.pending, Pending(due, next(self.pending_seq), kind, session))

    def live_join(self, session: LiveSession) -> Event:
        self.live_active.append(session)
        return self.live_snapshot(session, left_at=None, until=session.joined_at)

    def live_snapshot(
        self, session: LiveSession, left_at: datetime | None, until: datetime | None = None
    ) -> Event:
        end = left_at or until or session.joined_at
        minutes = max(0, int((end - session.joined_at).total_seconds() // 60))
        # Polls and messages accumulate with time in the session.
        while len(session.polls) < minutes // 15 and self.rng.random() < 0.8:
            session.polls.append(self.new_id())
        session.messages = max(session.messages, minutes + self.rng.randint(0, minutes + 1))
        if left_at is not None and session in self.live_active:
            self.live_active.remove(session)
        teacher = session.teacher_id
        return {
            "teacher_id": teacher,
            "class_id": session.class_id,
            "session_id": session.session_id,
            "joined_at": self.stamp(session.joined_at, teacher),
            "left_at": self.stamp(left_at, teacher) if left_at else None,
            "duration_seconds": int((end - session.joined_at).total_seconds()),
            "polls_launched": list(session.polls),
            "messages_sent": session.messages,
        }


# --- the stream ----------------------------------------------------------------------


def _rng(config: Config, purpose: str) -> random.Random:
    # Separate streams, so that changing how events are delivered (duplicates,
    # shuffle, batch) never changes the world that produced them.
    return random.Random(f"eventgen:{config.seed}:{purpose}")


def _event_times(config: Config, end: datetime, rng: random.Random) -> Iterator[datetime]:
    """``config.events`` increasing times in the window, busier by day than by night."""
    n, days = config.events, config.days
    span = days * 86400.0
    start = end - timedelta(seconds=span)
    midnight = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_of_day = (start - midnight).total_seconds() / 86400.0
    peak = 14 / 24  # busiest at 14:00 UTC
    tau = 2.0 * math.pi

    def wave(x: float) -> float:
        return math.sin(tau * (start_of_day + days * x - peak))

    u = 0.0
    for i in range(n):
        # The next order statistic of n uniforms: sorted, in O(1) memory.
        u = 1.0 - (1.0 - u) * rng.random() ** (1.0 / (n - i))
        # A monotone warp, so the times stay sorted: the density becomes
        # 1 / (1 - 0.6 cos(time of day - peak)), four times busier at the
        # peak than twelve hours away from it.
        warped = u - 0.6 * (wave(u) - wave(0.0)) / (tau * days)
        yield start + timedelta(seconds=min(span, max(0.0, warped * span)))


def world_events(config: Config) -> Iterator[Event]:
    """Every unique event once, in the order they happened."""
    end = config.now or datetime.now(UTC)
    world = World(config, _rng(config, "world"))
    kinds = Weighted(list(config.mix), list(config.mix.values()))
    choose = _rng(config, "mix")
    times = _event_times(config, end - timedelta(seconds=1), _rng(config, "time"))
    for moment in times:
        yield world.step(moment, kinds.pick(choose))


def deliver(events: Iterable[Event], config: Config) -> Iterator[Event]:
    """The events as clients send them: some re-sent, some late.

    Exactly ``round(events * duplicates)`` events are sent a second time (same
    ``event_id``, same content) up to a few batches later, and
    ``round(events * shuffle)`` arrive up to a few batches late. Memory stays
    bounded by that spread, so long streams are fine.
    """
    rng = _rng(config, "delivery")
    n = config.events
    resent = set(rng.sample(range(n), config.duplicate_count))
    late = set(rng.sample(range(n), round(n * config.shuffle)))
    window: list[tuple[float, int, Event]] = []
    order = itertools.count()
    for index, event in enumerate(events):
        key = float(index)
        if index in late:
            key += rng.uniform(1, LATE_SPREAD_BATCHES * config.batch)
        heapq.heappush(window, (key, next(order), event))
        if index in resent:
            again = key + rng.uniform(0, DUPLICATE_SPREAD_BATCHES * config.batch)
            heapq.heappush(window, (again, next(order), dict(event)))
        # Whatever is keyed below the next index can no longer be overtaken.
        while window and window[0][0] < index + 1:
            yield heapq.heappop(window)[2]
    while window:
        yield heapq.heappop(window)[2]


def generate(config: Config) -> Iterator[Event]:
    """The simulated stream, in arrival order, re-sends and late events included."""
    return deliver(world_events(config), config)


def batches(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    """Consecutive lists of at most ``size`` events."""
    iterator = iter(events)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# --- a live class, in real time (simulate.py --live) ------------------------------------


@dataclass
class Learner:
    """One student of the live class, working through its lesson and quiz."""

    student_id: str
    starts_at: datetime
    seconds_to_finish: float  # at their pace, from 0 to 100 %
    gives_up_at: float | None  # progress where they stop for today (None: they finish)
    progress: float = 0.0
    watch_seconds: float = 0.0
    last_seen: datetime | None = None
    completed_at: datetime | None = None
    quiz_due: bool = False  # an attempt is scheduled
    quiz_opened_at: datetime | None = None
    attempts: int = 0
    passed: bool = False


@dataclass
class ForumPost:
    post_id: str
    thread_id: str
    author_id: str


class Classroom:
    """One teacher's class as it happens, at human pace, for dashboards to watch.

    The teacher has created a lesson and a quiz, runs a live session (joined,
    then snapshots as its duration, polls and messages grow, ``left_at`` at
    ``finish``) and gives feedback on quiz attempts. Each student starts the
    lesson within the first two minutes and reports progress every few
    seconds (sections read, video watched, completion after 5 to 16 minutes;
    a few give up half way), attempts the quiz once past 60 % (a few who know
    the topic within two minutes; retrying up to three times until they
    pass), and posts, replies and likes in the forum.

    ``due(now)`` returns the events that happened up to ``now``; times come
    from the caller, so the same seed and times give the same events.
    """

    SNAPSHOT_SECONDS = 15.0
    PASS_ATTEMPTS = 3

    def __init__(self, start: datetime, students: int = 25, seed: int = 1) -> None:
        if start.tzinfo is None:
            raise ValueError("start must carry a time zone")
        if students < 1:
            raise ValueError("a class needs at least one student")
        rng = random.Random(f"classroom:{seed}")
        config = Config(students=students, teachers=1, lessons=1, quizzes=1, seed=seed)
        self.rng = rng
        self.world = World(config, rng)
        self.start = start
        self.teacher_id = self.world.teachers[0]
        self.class_id = self.world.classes[self.teacher_id][0]
        self.session_id = self.world.new_id()
        self.lesson = self.world.lessons[0]
        self.quiz = self.world.quizzes[0]
        self.learners = [
            Learner(
                student_id=student,
                # A few are there at once, the rest drift in over two minutes.
                starts_at=start
                + timedelta(seconds=rng.uniform(2, 8) if i < 5 else rng.uniform(8, 120)),
                seconds_to_finish=rng.uniform(5, 16) * 60,
                gives_up_at=rng.uniform(35, 80) if rng.random() < 0.15 else None,
            )
            for i, student in enumerate(self.world.students)
        ]
        self.by_id = {learner.student_id: learner for learner in self.learners}
        self.posts: list[ForumPost] = []
        self.likes: set[tuple[str, str]] = set()
        self.polls: list[str] = []
        self.messages = 0
        self.joined_at: datetime | None = None
        self.left_at: datetime | None = None
        self.feedback_due: dict[str, tuple[str, float]] = {}  # attempt_id -> (student, score)
        self.counts: Counter[str] = Counter()
        self._agenda: list[tuple[datetime, int, str, str]] = []  # (due, seq, action, student)
        self._seq = itertools.count()
        self._plan(start, "create_lesson")
        self._plan(start + timedelta(seconds=1), "create_quiz")
        self._plan(start + timedelta(seconds=2), "join_session")
        self._plan(start + timedelta(seconds=rng.uniform(10, 20)), "forum")
        self._plan(start + timedelta(seconds=rng.uniform(240, 420)), "update_lesson")
        for n, learner in enumerate(self.learners):
            self._plan(learner.starts_at, "progress", learner.student_id)
            if n == 1 or rng.random() < 0.1:
                # Knows the topic already: tries the quiz within minutes, so
                # its leaderboard moves early.
                learner.quiz_due = True
                learner.quiz_opened_at = learner.starts_at
                at = learner.starts_at + timedelta(seconds=rng.uniform(60, 150))
                self._plan(at, "attempt", learner.student_id)

    # -- what the simulator asks --------------------------------------------------------

    def due(self, now: datetime) -> list[Event]:
        """Every event that happened after the last call and up to ``now``, in time order."""
        events: list[Event] = []
        while self._agenda and self._agenda[0][0] <= now and self.left_at is None:
            at, _, action, student = heapq.heappop(self._agenda)
            event = getattr(self, f"_{action}")(at, student)
            if event is not None:
                events.append(event)
        return events

    def finish(self, now: datetime) -> list[Event]:
        """The teacher ends the live session: its last snapshot, with ``left_at``."""
        if self.left_at is not None:
            return []
        events = self.due(now)
        self.left_at = now
        if self.joined_at is not None:
            events.append(self._snapshot(now))
        return events

    @property
    def started(self) -> int:
        return sum(1 for learner in self.learners if learner.last_seen is not None)

    @property
    def completed(self) -> int:
        return sum(1 for learner in self.learners if learner.completed_at is not None)

    @property
    def passed(self) -> int:
        return sum(1 for learner in self.learners if learner.passed)

    # -- the agenda ----------------------------------------------------------------------

    def _plan(self, at: datetime, action: str, student: str = "") -> None:
        heapq.heappush(self._agenda, (at, next(self._seq), action, student))

    def _event(self, kind: str, fields: Event) -> Event:
        self.counts[kind] += 1
        return {"type": kind, "event_id": self.world.new_id(), **fields}

    def _create_lesson(self, now: datetime, _: str) -> Event:
        return self._content(now, self.lesson.lesson_id, "lesson", self.lesson.title)

    def _create_quiz(self, now: datetime, _: str) -> Event:
        return self._content(now, self.quiz.quiz_id, "quiz", self.quiz.title)

    def _update_lesson(self, now: datetime, _: str) -> Event:
        summary = self.world.text(_CHANGES, self.lesson.topic)
        return self._content(now, self.lesson.lesson_id, "lesson", self.lesson.title, summary)

    def _content(
        self, now: datetime, content_id: str, kind: str, title: str, changes: str | None = None
    ) -> Event:
        fields: Event = {
            "teacher_id": self.teacher_id,
            "content_id": content_id,
            "content_type": kind,
            "action": "created" if changes is None else "updated",
            "timestamp": self.world.stamp(now, self.teacher_id),
            "title": title,
        }
        if changes is not None:
            fields["changes_summary"] = changes
        return self._event("content_activity", fields)

    def _join_session(self, now: datetime, _: str) -> Event:
        self.joined_at = now
        self._plan(now + timedelta(seconds=self.SNAPSHOT_SECONDS), "snapshot")
        self._plan(now + timedelta(seconds=self.rng.uniform(45, 90)), "poll")
        return self._snapshot(now)

    def _snapshot(self, now: datetime, _: str = "") -> Event:
        assert self.joined_at is not None
        if self.left_at is None and now > self.joined_at:
            self.messages += self.rng.choice([0, 1, 1, 2, 3])  # the teacher's chat
            self._plan(now + timedelta(seconds=self.SNAPSHOT_SECONDS), "snapshot")
        return self._event(
            "live_class_engagement",
            {
                "teacher_id": self.teacher_id,
                "class_id": self.class_id,
                "session_id": self.session_id,
                "joined_at": self.world.stamp(self.joined_at, self.teacher_id),
                "left_at": self.world.stamp(now, self.teacher_id) if self.left_at else None,
                "duration_seconds": int((now - self.joined_at).total_seconds()),
                "polls_launched": list(self.polls),
                "messages_sent": self.messages,
            },
        )

    def _poll(self, now: datetime, _: str) -> None:
        # Shows in the next snapshot.
        self.polls.append(self.world.new_id())
        self._plan(now + timedelta(seconds=self.rng.uniform(120, 240)), "poll")

    def _progress(self, now: datetime, student: str) -> Event:
        rng = self.rng
        learner = self.by_id[student]
        lesson = self.lesson
        if learner.last_seen is not None:
            elapsed = (now - learner.last_seen).total_seconds()
            gain = 100.0 * elapsed / learner.seconds_to_finish * rng.uniform(0.5, 1.5)
            learner.progress = min(100.0, learner.progress + gain)
            learner.watch_seconds += elapsed * rng.uniform(0.4, 1.0)
        else:
            learner.progress = rng.uniform(0.5, 2.0)
        stopped = learner.gives_up_at is not None and learner.progress >= learner.gives_up_at
        if stopped and learner.gives_up_at is not None:
            learner.progress = learner.gives_up_at
        if learner.progress >= 100.0:
            learner.completed_at = now
        learner.last_seen = now
        if learner.completed_at is None and not stopped:
            self._plan(now + timedelta(seconds=rng.uniform(3, 8)), "progress", student)
        if learner.progress >= 60 and not learner.quiz_due and not learner.attempts:
            learner.quiz_due = True
            learner.quiz_opened_at = now
            self._plan(now + timedelta(seconds=rng.uniform(45, 180)), "attempt", student)
        read = math.ceil(learner.progress / 100 * len(lesson.sections))
        return self._event(
            "lesson_progress",
            {
                "student_id": student,
                "lesson_id": lesson.lesson_id,
                "started_at": self.world.stamp(learner.starts_at, student),
                "completed_at": (
                    self.world.stamp(learner.completed_at, student)
                    if learner.completed_at
                    else None
                ),
                "progress_percent": round(learner.progress, 1),
                "video_watch_time": int(learner.watch_seconds),
                "sections_read": lesson.sections[: max(1, read)],
                "last_accessed_at": self.world.stamp(now, student),
            },
        )

    def _attempt(self, now: datetime, student: str) -> Event:
        rng = self.rng
        learner = self.by_id[student]
        learner.attempts += 1
        opened = learner.quiz_opened_at or now
        chance = min(0.98, self.world.skill[student] + 0.1 * (learner.attempts - 1))
        answers: dict[str, Any] = {}
        score = 0.0
        for question in self.quiz.questions:
            right = rng.random() < chance
            answers[question.question_id] = self.world.answer(question, right)
            score += 1.0 if right else 0.0
        learner.passed = score >= self.quiz.pass_score
        learner.quiz_due = False
        attempt_id = self.world.new_id()
        if not learner.passed and learner.attempts < self.PASS_ATTEMPTS:
            learner.quiz_due = True
            learner.quiz_opened_at = now + timedelta(seconds=rng.uniform(30, 60))
            self._plan(now + timedelta(seconds=rng.uniform(90, 240)), "attempt", student)
        if rng.random() < 0.6:
            self._plan(now + timedelta(seconds=rng.uniform(20, 120)), "feedback", attempt_id)
            self.feedback_due[attempt_id] = (student, score)
        return self._event(
            "quiz_attempt",
            {
                "student_id": student,
                "quiz_id": self.quiz.quiz_id,
                "attempt_id": attempt_id,
                "attempt_number": learner.attempts,
                "answers": answers,
                "score": score,
                "submitted_at": self.world.stamp(now, student),
                "duration_seconds": max(30, int((now - opened).total_seconds())),
                "is_passed": learner.passed,
            },
        )

    def _feedback(self, now: datetime, attempt_id: str) -> Event:
        student, score = self.feedback_due.pop(attempt_id)
        kind = self.rng.choice(["text", "text", "rubric"])
        fields: Event = {
            "teacher_id": self.teacher_id,
            "student_id": student,
            "submission_id": attempt_id,
            "feedback_text": self.world.text(_FEEDBACK, self.lesson.topic),
            "feedback_type": kind,
            "created_at": self.world.stamp(now, self.teacher_id),
        }
        if kind == "rubric":
            fields["score"] = round(100 * score / len(self.quiz.questions), 1)
        return self._event("feedback", fields)

    def _forum(self, now: datetime, _: str) -> Event:
        rng = self.rng
        self._plan(now + timedelta(seconds=rng.expovariate(1 / 8)), "forum")
        present = [s.student_id for s in self.learners if s.last_seen is not None]
        topic = self.lesson.topic
        user = self.teacher_id if not present or rng.random() < 0.15 else rng.choice(present)
        roll = rng.random()
        if not self.posts or roll < 0.12:
            thread_id = self.world.new_id()
            post = ForumPost(self.world.new_id(), thread_id, user)
            self.posts.append(post)
            return self._event(
                "forum_activity",
                {
                    "user_id": user,
                    "post_id": post.post_id,
                    "thread_id": thread_id,
                    "action_type": "post",
                    "content": self.world.text(_QUESTIONS, topic),
                    "created_at": self.world.stamp(now, user),
                },
            )
        target = rng.choice(self.posts[-30:])
        if roll < 0.55 or target.author_id == user or (user, target.post_id) in self.likes:
            post = ForumPost(self.world.new_id(), target.thread_id, user)
            self.posts.append(post)
            return self._event(
                "forum_activity",
                {
                    "user_id": user,
                    "post_id": post.post_id,
                    "thread_id": target.thread_id,
                    "action_type": "reply",
                    "content": self.world.text(_REPLIES, topic),
                    "created_at": self.world.stamp(now, user),
                    "parent_post_id": target.post_id,
                },
            )
        self.likes.add((user, target.post_id))
        return self._event(
            "forum_activity",
            {
                "user_id": user,
                "post_id": target.post_id,
                "thread_id": target.thread_id,
                "action_type": "like",
                "created_at": self.world.stamp(now, user),
            },
        )
