"""A live class in real time (simulate.py --live)."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scripts.eventgen.model import (
    CHANGES,
    FEEDBACK_TEXTS,
    FORUM_QUESTIONS,
    FORUM_REPLIES,
    Config,
    Event,
)
from scripts.eventgen.world import World

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
        summary = self.world.text(CHANGES, self.lesson.topic)
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
            "feedback_text": self.world.text(FEEDBACK_TEXTS, self.lesson.topic),
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
                    "content": self.world.text(FORUM_QUESTIONS, topic),
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
                    "content": self.world.text(FORUM_REPLIES, topic),
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
