"""The platform as objects: ``World.step`` advances it and returns one event."""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from scripts.eventgen.model import (
    BEST_CHANCE,
    CHANGES,
    CLASSES_PER_STUDENT,
    CLASSES_PER_TEACHER,
    CO_TEACHER,
    CO_TEACHER_JOINS_MINUTES,
    CONTINUE_LESSON,
    ESSAY,
    FEEDBACK_SCORE,
    FEEDBACK_TEXTS,
    FEEDBACK_TYPES,
    FINISH_CHANCE,
    FINISH_FROM,
    FORUM_QUESTIONS,
    FORUM_REPLIES,
    FORUM_SKEW,
    LIKE_ANY,
    MAX_RETRIES,
    MID_SESSION_UPDATE,
    NEW_CONTENT,
    NEW_CONTENT_WEIGHT,
    NEW_THREAD,
    PARTIAL_CREDIT,
    PASS_SHARE,
    POLL_CHANCE,
    POLL_MINUTES,
    POPULARITY_SKEW,
    PRACTICE_GAIN,
    PROGRESS_STEP,
    QUESTION_KINDS,
    QUESTIONS_PER_QUIZ,
    RECENT_THREADS,
    REPLY,
    REPLY_TO_OPENING,
    RETRY_CHANCE,
    ROSTER_PARETO,
    SECOND_PASS,
    SECONDS_PER_QUESTION,
    SECTION_NAMES,
    SECTIONS_PER_LESSON,
    SESSION_MINUTES,
    SKILL,
    STARTED_BEFORE_SECONDS,
    STUDENT_SKEW,
    STUDIED_QUIZ,
    SUBJECTS,
    TEACHER_SKEW,
    TEXT_SCORED,
    THREAD_WEIGHT_CAP,
    UPDATE_OWN,
    UTC_OFFSETS_MINUTES,
    VIDEO_SECONDS,
    WATCH_FACTOR,
    Config,
    Event,
    Weighted,
    zipf,
    zipf_weights,
)

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
        return PASS_SHARE * len(self.questions)


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
            user: timezone(timedelta(minutes=rng.choice(UTC_OFFSETS_MINUTES)))
            for user in self.students + self.teachers
        }
        self.skill = {s: rng.uniform(*SKILL) for s in self.students}
        self.active_students = zipf(self.students, rng, exponent=STUDENT_SKEW)
        self.active_teachers = zipf(self.teachers, rng, exponent=TEACHER_SKEW)
        self.forum_users = zipf(self.students + self.teachers, rng, exponent=FORUM_SKEW)

        # Classes: each teacher runs one to three; each student is in one to three.
        self.classes: dict[str, list[str]] = {t: [] for t in self.teachers}
        self.class_teacher: dict[str, str] = {}
        for teacher in self.teachers:
            for _ in range(rng.randint(*CLASSES_PER_TEACHER)):
                class_id = self.new_id()
                self.classes[teacher].append(class_id)
                self.class_teacher[class_id] = teacher
        all_classes = list(self.class_teacher)
        self.teacher_students: dict[str, list[str]] = {t: [] for t in self.teachers}
        for student in self.students:
            for class_id in rng.sample(
                all_classes, k=min(len(all_classes), rng.randint(*CLASSES_PER_STUDENT))
            ):
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
        self.lesson_weights = zipf_weights(len(self.lessons), rng, exponent=POPULARITY_SKEW)
        self.quiz_weights = zipf_weights(len(self.quizzes), rng, exponent=POPULARITY_SKEW)
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
        subject = self.rng.choice(list(SUBJECTS))
        topic = self.rng.choice(SUBJECTS[subject])
        count = self.rng.randint(*SECTIONS_PER_LESSON)
        lesson = Lesson(
            lesson_id=self.new_id(),
            teacher_id=teacher,
            title=f"{subject}: {topic}",
            topic=topic,
            sections=[*SECTION_NAMES[:count], "summary"],
            video_seconds=self.rng.randint(*VIDEO_SECONDS),
        )
        self.lessons.append(lesson)
        self.lesson_by_id[lesson.lesson_id] = lesson
        self.owned.setdefault(teacher, []).append(lesson)
        return lesson

    def add_quiz(self, teacher: str, topic: str) -> Quiz:
        questions = []
        for _ in range(self.rng.randint(*QUESTIONS_PER_QUIZ)):
            kind = self.rng.choices(list(QUESTION_KINDS), list(QUESTION_KINDS.values()))[0]
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
        if started and (rng.random() < CONTINUE_LESSON or len(started) >= len(self.lessons)):
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
            state = Progress(
                started_at=now - timedelta(seconds=rng.randint(0, STARTED_BEFORE_SECONDS))
            )
            self.progress[(student, lesson.lesson_id)] = state
        if state.completed_at is None:
            state.progress = min(100.0, round(state.progress + rng.uniform(*PROGRESS_STEP), 1))
            if state.progress >= FINISH_FROM and rng.random() < FINISH_CHANCE:
                state.progress = 100.0
            if state.progress >= 100.0:
                state.completed_at = now
        # Watching never goes backwards; rewatching can exceed the video's length.
        watched = int(state.progress / 100 * lesson.video_seconds * rng.uniform(*WATCH_FACTOR))
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
        chance = min(BEST_CHANCE, self.skill[student] + PRACTICE_GAIN * (number - 1))
        answers: dict[str, Any] = {}
        score = 0.0
        for question in quiz.questions:
            right = rng.random() < chance
            answers[question.question_id] = self.answer(question, right)
            if right:
                score += 1.0
            elif question.kind == "multiple" and rng.random() < PARTIAL_CREDIT:
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
            "duration_seconds": rng.randint(
                SECONDS_PER_QUESTION[0], SECONDS_PER_QUESTION[1] * len(quiz.questions)
            ),
            "is_passed": passed,
        }

    def next_quiz(self, student: str) -> Quiz | None:
        """Retry one not yet passed, else a new one (those of lessons studied first)."""
        rng = self.rng
        taken = self.attempts.setdefault(student, {})
        retry = [q for q, n in taken.items() if (student, q) not in self.passed and n < MAX_RETRIES]
        if retry and rng.random() < RETRY_CHANCE:
            return self.quiz_by_id[rng.choice(retry)]
        if len(taken) < len(self.quizzes):
            studied = [
                quiz_id
                for lesson_id in self.in_progress.get(student, [])
                if (quiz_id := self.lesson_by_id[lesson_id].quiz_id) and quiz_id not in taken
            ]
            if studied and rng.random() < STUDIED_QUIZ:
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
        if self.threads and roll >= NEW_THREAD:
            thread = self.pick_thread()
            if roll < NEW_THREAD + REPLY:
                return self.reply(now, user, thread)
            post = rng.choice(thread.posts) if rng.random() < LIKE_ANY else thread.posts[0]
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
            "content": self.text(FORUM_QUESTIONS, topic),
            "created_at": self.stamp(now, user),
        }

    def pick_thread(self) -> Thread:
        """Preferential attachment: busy threads attract more activity."""
        recent = self.threads[-RECENT_THREADS:]
        # Capped, so one early thread does not take over the whole forum.
        weights = [float(min(thread.actions, THREAD_WEIGHT_CAP)) for thread in recent]
        return self.rng.choices(recent, weights)[0]

    def reply(self, now: datetime, user: str, thread: Thread) -> Event:
        parent = (
            thread.posts[0]
            if self.rng.random() < REPLY_TO_OPENING
            else self.rng.choice(thread.posts)
        )
        post = Post(self.new_id(), user, now)
        thread.posts.append(post)
        thread.actions += 1
        content = self.text(FORUM_REPLIES, thread.topic)
        if self.rng.random() < ESSAY:
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
        if owned and rng.random() < UPDATE_OWN:
            item = rng.choice(owned)
            lesson_update = isinstance(item, Lesson)
            return {
                "teacher_id": teacher,
                "content_id": item.lesson_id if isinstance(item, Lesson) else item.quiz_id,
                "content_type": "lesson" if lesson_update else "quiz",
                "action": "updated",
                "timestamp": self.stamp(now, teacher),
                "title": item.title,
                "changes_summary": self.text(CHANGES, item.topic),
            }
        content_type = rng.choices(list(NEW_CONTENT), list(NEW_CONTENT.values()))[0]
        if content_type == "lesson":
            # New lessons join the catalogue: students can start them from now on.
            lesson = self.add_lesson(teacher)
            self.lesson_weights.append(NEW_CONTENT_WEIGHT)
            self.lesson_popularity = Weighted(self.lessons, self.lesson_weights)
            content_id, title = lesson.lesson_id, lesson.title
        elif content_type == "quiz":
            quiz = self.add_quiz(teacher, rng.choice(self.lessons).topic)
            self.quiz_weights.append(NEW_CONTENT_WEIGHT)
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
        student = roster[min(int(rng.paretovariate(ROSTER_PARETO)) - 1, len(roster) - 1)]
        previous = self.submissions.setdefault(student, [])
        if previous and rng.random() < SECOND_PASS:
            submission = previous[-1]  # a second pass over the same work
        else:
            submission = self.new_id()
            previous.append(submission)
        feedback_type = rng.choices(list(FEEDBACK_TYPES), list(FEEDBACK_TYPES.values()))[0]
        event: Event = {
            "teacher_id": teacher,
            "student_id": student,
            "submission_id": submission,
            "feedback_text": self.text(FEEDBACK_TEXTS, rng.choice(self.lessons).topic),
            "feedback_type": feedback_type,
            "created_at": self.stamp(now, teacher),
        }
        if feedback_type == "rubric" or (feedback_type == "text" and rng.random() < TEXT_SCORED):
            event["score"] = round(rng.uniform(*FEEDBACK_SCORE), 1)
        return event

    def live_class_engagement(self, now: datetime) -> Event:
        if self.pending and self.pending[0].due <= now:
            due = heapq.heappop(self.pending)
            session = due.session
            if due.kind == "join":
                self.schedule("leave", session.ends_at, session)
                return self.live_join(session)
            return self.live_snapshot(session, left_at=due.due)
        if self.live_active and self.rng.random() < MID_SESSION_UPDATE:
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
            ends_at=now + timedelta(minutes=rng.randint(*SESSION_MINUTES)),
        )
        self.schedule("leave", session.ends_at, session)
        if len(self.teachers) > 1 and rng.random() < CO_TEACHER:
            # A co-teacher joins a few minutes in and leaves with the class.
            co_teacher = rng.choice([t for t in self.teachers if t != teacher])
            co_session = LiveSession(
                session_id=session.session_id,
                class_id=class_id,
                teacher_id=co_teacher,
                joined_at=now + timedelta(minutes=rng.randint(*CO_TEACHER_JOINS_MINUTES)),
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
        while len(session.polls) < minutes // POLL_MINUTES and self.rng.random() < POLL_CHANCE:
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
