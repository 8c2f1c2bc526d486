"""The simulated platform as numpy columns: millions of events at once, for the bulk loader.

The same world as ``World.step`` makes one event at a time: its catalogue is
built by ``World`` itself (students and their skill, teachers, classes and
rosters, lessons with their sections, video and quiz, quizzes with their
questions, every Zipf weight; for one ``Config``, the very catalogue the
stream uses), and every share, range and skew comes from ``model``. What
differs is only the order of work: instead of one step per event, each event
type is drawn for the whole window at once, in arrays, so ten million events
take about a minute instead of hours. The invariants hold as in the stream:
progress only rises per (student, lesson) and completes once; quiz attempts
count up per (student, quiz) until a pass or ``MAX_RETRIES``; replies answer
an earlier post of their thread and likes like one (never one's own, never
twice); lessons and quizzes are created by their teacher before anyone
studies them; feedback goes to a student of the teacher's classes; live
snapshots of a session grow and the last one leaves.

Each type comes out as a ``Table`` (``columns``): its columns in the model's
field order (``shared.models.events``), ready to be written as rows (the loader COPYs
them) or read back as events (``Table.events``, for tests).

    from scripts.eventgen import Config, bulk
    for table in bulk.tables(Config(events=1_000_000, students=5_000, ...)): ...
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np

from scripts.eventgen.columns import (
    ID_PREFIX,
    Bools,
    Column,
    Floats,
    Ints,
    Table,
    cumulative,
    group_starts,
    numbered_ids,
    pick,
    running_max,
    templated,
)
from scripts.eventgen.model import (
    BEST_CHANCE,
    CHANGES,
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
    LIKE_ANY,
    MAX_RETRIES,
    MID_SESSION_UPDATE,
    NEW_CONTENT,
    NEW_THREAD,
    PARTIAL_CREDIT,
    PASS_SHARE,
    POLL_MINUTES,
    PRACTICE_GAIN,
    PROGRESS_STEP,
    RECENT_THREADS,
    REPLY,
    REPLY_TO_OPENING,
    ROSTER_PARETO,
    SECOND_PASS,
    SECONDS_PER_QUESTION,
    SESSION_MINUTES,
    STARTED_BEFORE_SECONDS,
    STUDIED_QUIZ,
    SUBJECTS,
    TEXT_SCORED,
    UPDATE_OWN,
    WATCH_FACTOR,
    Config,
    busy_hours,
)
from scripts.eventgen.world import World
from shared.models.events import EVENT_TYPES

# What only the bulk generator needs (the stream's timing emerges from its steps).
CATALOGUE_SHARE = 0.02  # the catalogue is created in this first share of the window
RETRY_HOURS = (1.0, 21.0)  # between two attempts at a quiz
POLLS_PER_SESSION = 16  # poll id space per participant (90 minutes / 15 = 6 at most)
MID_UPDATES = 2 * MID_SESSION_UPDATE / (1 - MID_SESSION_UPDATE)  # per participant, on average
RECEIVED_AFTER = 2.0  # seconds from an event to its arrival
THREAD_CANDIDATES = 6  # activity goes to the most appealing of this many recent threads

# --- the world -----------------------------------------------------------------------------


class Bulk:
    """The catalogue of a ``World`` and the window, and each type's events drawn from them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        end = config.now or datetime.now(UTC)
        self.end = (end - timedelta(seconds=1)).timestamp()
        self.start = self.end - config.days * 86400.0
        self.span = self.end - self.start
        self.world = world = World(config, random.Random(f"eventgen:{config.seed}:world"))
        self.students = world.students
        self.teachers = world.teachers
        self.teacher_number = {t: i for i, t in enumerate(self.teachers)}
        self.skill = np.array([world.skill[s] for s in self.students])
        self.student_weights = cumulative(world.active_students)
        self.teacher_weights = cumulative(world.active_teachers)
        self.forum_users = world.forum_users.items
        self.forum_weights = cumulative(world.forum_users)
        self.lessons = world.lessons
        self.quizzes = world.quizzes
        self.lesson_weights = cumulative(world.lesson_popularity)
        self.quiz_weights = cumulative(world.quiz_popularity)
        self.quiz_number = {q.quiz_id: i for i, q in enumerate(self.quizzes)}
        # Each lesson's quiz (-1: none), for "the quiz of a lesson one studies".
        self.lesson_quiz = np.array(
            [self.quiz_number.get(lesson.quiz_id or "", -1) for lesson in self.lessons]
        )
        self.topics = [lesson.topic for lesson in self.lessons]
        # Lessons and quizzes are created, by their teacher, before anyone studies them.
        seed = np.random.default_rng([config.seed, 0])
        self.lesson_created = self.start + seed.random(len(self.lessons)) * self.span * (
            CATALOGUE_SHARE
        )
        self.quiz_created = self.start + seed.random(len(self.quizzes)) * self.span * (
            CATALOGUE_SHARE
        )
        # Sections read after k sections, one tuple per (lesson, k), shared by the rows.
        self.section_prefixes = [
            [tuple(lesson.sections[:k]) for k in range(len(lesson.sections) + 1)]
            for lesson in self.lessons
        ]
        # (student, lesson) pairs under way: the quizzes of studied lessons come next.
        self.studied: tuple[Ints, Ints] = (np.zeros(0, np.int64), np.zeros(0, np.int64))

    def rng(self, kind: str) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, 1 + list(ID_PREFIX).index(kind)])

    def times(self, rng: np.random.Generator, n: int) -> Floats:
        """``n`` sorted moments in the window, busier by day (as the stream's)."""
        start = datetime.fromtimestamp(self.start, UTC)
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        start_of_day = (start - midnight).total_seconds() / 86400.0
        u = np.sort(rng.random(n))
        warped = busy_hours(u, start_of_day, self.config.days, np.sin)
        moments: Floats = self.start + np.clip(warped, 0.0, 1.0) * self.span
        return moments

    # -- lesson progress ---------------------------------------------------------------------

    def lesson_progress(self, n: int) -> Table:
        rng = self.rng("lesson_progress")
        # A new pair (student, lesson) for the share of events that start a lesson.
        pairs = max(1, round(n * (1 - CONTINUE_LESSON)))
        keys = np.unique(
            pick(rng, self.student_weights, pairs) * len(self.lessons)
            + pick(rng, self.lesson_weights, pairs)
        )
        self.studied = (keys // len(self.lessons), keys % len(self.lessons))
        pair = np.sort(rng.integers(0, len(keys), n))  # rows grouped by pair, times within
        number, starts = group_starts(pair)
        student, lesson = self.studied[0][pair], self.studied[1][pair]
        at = rng.permutation(self.times(rng, n))  # a moment each...
        at = np.maximum(at, self.lesson_created[lesson] + STARTED_BEFORE_SECONDS)
        order = np.lexsort((at, pair))  # ...in time order within each pair
        at = at[order]
        step = rng.uniform(*PROGRESS_STEP, n)
        total = np.cumsum(step)
        total -= (total[starts] - step[starts])[number]  # progress within each pair
        done = (total >= 100.0) | ((total >= FINISH_FROM) & (rng.random(n) < FINISH_CHANCE))
        progress = np.where(done, 100.0, np.minimum(np.round(total, 1), 100.0))
        finished_at = np.minimum.reduceat(np.where(done, at, np.inf), starts)[number]
        completed = np.where(done, finished_at, np.nan)
        started = (at[starts] - rng.integers(0, STARTED_BEFORE_SECONDS + 1, len(starts)))[number]
        video = np.array([self.lessons[i].video_seconds for i in lesson], dtype=np.float64)
        watched = np.floor(progress / 100 * video * rng.uniform(*WATCH_FACTOR, n))
        watch = running_max(watched, number).astype(np.int64)
        counts = np.array([len(self.lessons[i].sections) for i in lesson])
        read = np.maximum(1, np.ceil(progress / 100 * counts)).astype(np.int64)
        return Table(
            "lesson_progress",
            {
                "event_id": Column("text", numbered_ids("lesson_progress", range(n))),
                "student_id": Column("text", [self.students[s] for s in student]),
                "lesson_id": Column("text", [self.lessons[i].lesson_id for i in lesson]),
                "started_at": Column("time", started),
                "completed_at": Column("time", completed),
                "progress_percent": Column("float", progress),
                "video_watch_time": Column("int", watch),
                "sections_read": Column(
                    "array",
                    [self.section_prefixes[i][k] for i, k in zip(lesson, read, strict=True)],
                ),
                "last_accessed_at": Column("time", at),
            },
        )

    # -- quiz attempts -----------------------------------------------------------------------

    def quiz_attempt(self, n: int) -> Table:
        """Series of attempts by a student at a quiz, until a pass or ``MAX_RETRIES``."""
        rng = self.rng("quiz_attempt")
        series = max(1, n)  # more than enough: every series has an attempt
        studied_students, studied_lessons = self.studied
        student = pick(rng, self.student_weights, series)
        quiz = pick(rng, self.quiz_weights, series)
        if len(studied_students):
            # Most take the quiz of a lesson they study.
            pair = rng.integers(0, len(studied_students), series)
            of_lesson = self.lesson_quiz[studied_lessons[pair]]
            use = (rng.random(series) < STUDIED_QUIZ) & (of_lesson >= 0)
            student = np.where(use, studied_students[pair], student)
            quiz = np.where(use, of_lesson, quiz)
        # One series per (student, quiz): attempt numbers count up within it.
        _, first = np.unique(student * len(self.quizzes) + quiz, return_index=True)
        keep = np.sort(first)
        student, quiz = student[keep], quiz[keep]
        questions = [self.quizzes[q].questions for q in quiz]
        # Per quiz: how many questions, and which take several answers (partial credit).
        widest = max(len(q.questions) for q in self.quizzes)
        quiz_sizes = np.array([len(q.questions) for q in self.quizzes])
        quiz_multiple = np.array(
            [
                [i < len(q.questions) and q.questions[i].kind == "multiple" for i in range(widest)]
                for q in self.quizzes
            ]
        )
        sizes, multiple = quiz_sizes[quiz], quiz_multiple[quiz]
        asked = np.arange(widest)[None, :] < sizes[:, None]
        # Attempt after attempt for the series still going (practice helps).
        rows: list[tuple[Ints, Ints, Bools, Floats, Bools]] = []
        taken = np.zeros(len(student), dtype=np.int64)  # attempts so far per series
        going = np.arange(len(student))
        attempts = 0
        while attempts < n:
            if not len(going):
                # Everyone passed or gave up, and there are attempts left to make: as
                # in the stream, students take a quiz again (the numbers count on).
                going = rng.choice(len(student), min(n - attempts, len(student)), replace=False)
            number = taken[going] + 1
            chance = np.minimum(
                BEST_CHANCE, self.skill[student[going]] + PRACTICE_GAIN * (number - 1)
            )
            draws = rng.random((len(going), widest), dtype=np.float32)
            right = (draws < chance[:, None]) & asked[going]
            lucky = rng.random((len(going), widest), dtype=np.float32) < PARTIAL_CREDIT
            partial = ~right & multiple[going] & lucky
            score = right.sum(axis=1) + 0.5 * (partial & asked[going]).sum(axis=1)
            passed = score >= PASS_SHARE * sizes[going]
            rows.append((going, number, right, score.astype(np.float64), passed))
            attempts += len(going)
            taken[going] = number
            going = going[~passed & (number < MAX_RETRIES)]
        which = np.concatenate([r[0] for r in rows])
        numbers = np.concatenate([r[1] for r in rows])
        right = np.concatenate([r[2] for r in rows])
        score = np.concatenate([r[3] for r in rows])
        passed = np.concatenate([r[4] for r in rows])
        # Grouped by series, attempts in order; the first n rows are kept.
        order = np.lexsort((numbers, which))[:n]
        which, numbers, right, score, passed = (
            which[order],
            numbers[order],
            right[order],
            score[order],
            passed[order],
        )
        count = len(which)
        first_at = np.maximum(
            self.start + rng.random(len(student)) * self.span * 0.95,
            self.quiz_created[quiz] + 60.0,
        )
        gap = np.where(numbers > 1, rng.uniform(*RETRY_HOURS, count) * 3600.0, 0.0)
        number_in_run, starts = group_starts(which)
        elapsed = np.cumsum(gap)
        elapsed -= elapsed[starts][number_in_run]
        at = np.minimum(first_at[which] + elapsed, self.end - 1)
        seconds = rng.integers(SECONDS_PER_QUESTION[0], SECONDS_PER_QUESTION[1] * sizes[which] + 1)
        # Each question's answer, right or wrong (a wrong one decided once per question).
        fragments = {
            q.question_id: (
                f"{json.dumps(q.question_id)}: {json.dumps(self.world.answer(q, False))}",
                f"{json.dumps(q.question_id)}: {json.dumps(q.correct)}",
            )
            for quiz_ in self.quizzes
            for q in quiz_.questions
        }
        answers = [
            "{"
            + ", ".join(
                fragments[q.question_id][int(r)]
                for q, r in zip(questions[k], right[i], strict=False)
            )
            + "}"
            for i, k in enumerate(which)
        ]
        return Table(
            "quiz_attempt",
            {
                "event_id": Column("text", numbered_ids("quiz_attempt", range(count))),
                "student_id": Column("text", [self.students[student[k]] for k in which]),
                "quiz_id": Column("text", [self.quizzes[quiz[k]].quiz_id for k in which]),
                "attempt_id": Column("text", numbered_ids("attempt", range(count))),
                "attempt_number": Column("int", numbers.astype(np.int64)),
                "answers": Column("json", answers),
                "score": Column("float", score),
                "submitted_at": Column("time", at),
                "duration_seconds": Column("int", seconds.astype(np.int64)),
                "is_passed": Column("bool", passed),
            },
        )

    # -- forum -------------------------------------------------------------------------------

    def forum_activity(self, n: int) -> Table:
        """Threads open with a post; replies answer an earlier post of the thread; likes."""
        rng = self.rng("forum_activity")
        roll = rng.random(n)
        kind = np.where(roll < NEW_THREAD, 0, np.where(roll < NEW_THREAD + REPLY, 1, 2))
        kind[0] = 0  # 0 post, 1 reply, 2 like
        at = self.times(rng, n)
        user = pick(rng, self.forum_weights, n)
        opening = np.flatnonzero(kind == 0)
        threads = len(opening)
        # Activity goes to the recent threads, the busier ones (appeal) more: the best
        # of a few among the last RECENT_THREADS opened so far.
        appeal = rng.permutation(threads)
        opened = np.searchsorted(opening, np.arange(n), side="right")  # threads open so far
        window = np.minimum(opened, RECENT_THREADS)
        draws = rng.random((n, THREAD_CANDIDATES))
        candidates = opened[:, None] - 1 - np.floor(draws * window[:, None])
        candidates = candidates.astype(np.int64)
        best = np.take_along_axis(
            candidates, np.argmax(appeal[candidates], axis=1)[:, None], axis=1
        )[:, 0]
        thread = np.where(kind == 0, np.cumsum(kind == 0) - 1, best)
        # Posts and replies of each thread in order: a reply answers one of those before it.
        writers = np.flatnonzero(kind < 2)
        by_thread = writers[np.lexsort((writers, thread[writers]))]
        _, thread_start = group_starts(thread[by_thread])
        position = np.zeros(n, dtype=np.int64)
        position[by_thread] = np.arange(len(by_thread))
        rank = position - thread_start[thread]  # 0 for the opening post
        to_opening = rng.random(n) < REPLY_TO_OPENING
        parent_rank = np.where(to_opening, 0, np.floor(rng.random(n) * np.maximum(rank, 1)))
        parent = by_thread[thread_start[thread] + parent_rank.astype(np.int64)]
        # A like: the opening post or any post of the thread written before it.
        key = thread[by_thread] * (n + 1) + by_thread
        before = np.searchsorted(key, thread * (n + 1) + np.arange(n)) - thread_start[thread]
        liked_rank = np.where(
            rng.random(n) < LIKE_ANY, np.floor(rng.random(n) * np.maximum(before, 1)), 0
        )
        liked = by_thread[thread_start[thread] + liked_rank.astype(np.int64)]
        # One's own post is not liked, nor a post twice: those become replies to it.
        likes = kind == 2
        own = likes & (user[liked] == user)
        pairs = np.where(likes & ~own, user * (n + 1) + liked, -1 - np.arange(n))
        _, once = np.unique(pairs, return_index=True)
        again = likes & ~own & ~np.isin(np.arange(n), once)
        turned = own | again
        parent = np.where(turned, liked, parent)
        kind = np.where(turned, 1, kind)
        target = np.where(kind == 2, liked, np.arange(n))
        post_ids = numbered_ids("post", range(n))
        topics = [self.topics[int(t)] for t in rng.integers(0, len(self.topics), threads)]
        questions = templated(rng, FORUM_QUESTIONS, topics)
        replies = templated(rng, FORUM_REPLIES, [topics[t] for t in thread])
        essays = rng.random(n) < ESSAY
        repeats = rng.integers(5, 41, n)
        content: list[str | None] = [
            questions[thread[i]]
            if k == 0
            else (" ".join([replies[i]] * int(repeats[i])) if essays[i] else replies[i])
            if k == 1
            else None
            for i, k in enumerate(kind)
        ]
        thread_ids = numbered_ids("thread", range(threads))
        return Table(
            "forum_activity",
            {
                "event_id": Column("text", numbered_ids("forum_activity", range(n))),
                "user_id": Column("text", [self.forum_users[u] for u in user]),
                "post_id": Column("text", [post_ids[t] for t in target]),
                "thread_id": Column("text", [thread_ids[t] for t in thread]),
                "action_type": Column("text", [("post", "reply", "like")[k] for k in kind]),
                "content": Column("text", content),
                "created_at": Column("time", at),
                "parent_post_id": Column(
                    "text",
                    [post_ids[p] if k == 1 else None for p, k in zip(parent, kind, strict=True)],
                ),
            },
        )

    # -- content -----------------------------------------------------------------------------

    def content_activity(self, n: int) -> Table:
        """The catalogue created by its teachers, then updates of their own and new content."""
        rng = self.rng("content_activity")
        # (teacher, content id, type, title, created at, topic)
        catalogue: list[tuple[str, str, str, str, float, str]] = [
            (lesson.teacher_id, lesson.lesson_id, "lesson", lesson.title, float(at), lesson.topic)
            for lesson, at in zip(self.lessons, self.lesson_created, strict=True)
        ] + [
            (quiz.teacher_id, quiz.quiz_id, "quiz", quiz.title, float(at), quiz.topic)
            for quiz, at in zip(self.quizzes, self.quiz_created, strict=True)
        ]
        catalogue = catalogue[:n]
        rest = n - len(catalogue)
        at = self.times(rng, rest)
        teacher = pick(rng, self.teacher_weights, rest)
        # An update of one of the teacher's own items, created before it.
        owned: dict[int, list[int]] = {}
        for i, (owner, *_) in enumerate(catalogue):
            owned.setdefault(self.teacher_number[owner], []).append(i)
        own = [owned.get(int(t)) for t in teacher]
        update = (rng.random(rest) < UPDATE_OWN) & np.array([o is not None for o in own], bool)
        item = np.array(
            [o[int(u * len(o))] if o else -1 for o, u in zip(own, rng.random(rest), strict=True)]
        )
        created_of = np.array([row[4] for row in catalogue] or [0.0])
        at = np.where(update, np.maximum(at, created_of[np.maximum(item, 0)] + 1.0), at)
        new_kind = rng.choice(
            list(NEW_CONTENT),
            rest,
            p=np.array(list(NEW_CONTENT.values())) / sum(NEW_CONTENT.values()),
        )
        subjects = list(SUBJECTS)
        subject = rng.integers(0, len(subjects), rest)
        topic_pick = rng.integers(0, 4, rest)
        new_ids = numbered_ids("content", range(rest))
        rows: list[tuple[str, str, str, str, float, str | None]] = [
            (*row[:5], None) for row in catalogue
        ]
        changes = templated(rng, CHANGES, [catalogue[i][5] if i >= 0 else "" for i in item])
        for j in range(rest):
            if update[j]:
                owner, content_id, content_type, title, *_ = catalogue[item[j]]
                rows.append((owner, content_id, content_type, title, float(at[j]), changes[j]))
                continue
            name = subjects[subject[j]]
            topic = SUBJECTS[name][topic_pick[j] % len(SUBJECTS[name])]
            title = {
                "lesson": f"{name}: {topic}",
                "quiz": f"{topic} check-up",
                "assignment": f"Assignment: {topic} problem set",
            }[str(new_kind[j])]
            rows.append(
                (self.teachers[teacher[j]], new_ids[j], str(new_kind[j]), title, float(at[j]), None)
            )
        return Table(
            "content_activity",
            {
                "event_id": Column("text", numbered_ids("content_activity", range(n))),
                "teacher_id": Column("text", [r[0] for r in rows]),
                "content_id": Column("text", [r[1] for r in rows]),
                "content_type": Column("text", [r[2] for r in rows]),
                "action": Column("text", ["created" if r[5] is None else "updated" for r in rows]),
                "timestamp": Column("time", np.array([r[4] for r in rows], dtype=np.float64)),
                "title": Column("text", [r[3] for r in rows]),
                "changes_summary": Column("text", [r[5] for r in rows]),
            },
        )

    # -- feedback ----------------------------------------------------------------------------

    def feedback(self, n: int) -> Table:
        """Teachers' feedback to students of their classes, some on the same work again."""
        rng = self.rng("feedback")
        at = self.times(rng, n)
        teacher = pick(rng, self.teacher_weights, n)
        rosters = [self.world.teacher_students[t] or self.students for t in self.teachers]
        rank = np.floor(rng.pareto(ROSTER_PARETO, n)).astype(np.int64)  # paretovariate - 1
        student_ids = [
            rosters[t][min(int(r), len(rosters[t]) - 1)] for t, r in zip(teacher, rank, strict=True)
        ]
        # A second pass over the student's previous submission, now and then.
        student_number = {s: i for i, s in enumerate(self.students)}
        student = np.array([student_number[s] for s in student_ids], dtype=np.int64)
        order = np.lexsort((np.arange(n), student))
        _, starts = group_starts(student[order])
        previous = np.full(n, -1, dtype=np.int64)
        first = np.zeros(n, bool)
        first[starts] = True
        previous[order[~first]] = order[np.flatnonzero(~first) - 1]
        source = np.where((previous >= 0) & (rng.random(n) < SECOND_PASS), previous, np.arange(n))
        while not np.array_equal(source, source[source]):
            source = source[source]
        kinds = list(FEEDBACK_TYPES)
        weights = np.array(list(FEEDBACK_TYPES.values()))
        kind = rng.choice(len(kinds), n, p=weights / weights.sum())
        scored = (kind == kinds.index("rubric")) | (
            (kind == kinds.index("text")) & (rng.random(n) < TEXT_SCORED)
        )
        score = np.where(scored, np.round(rng.uniform(*FEEDBACK_SCORE, n), 1), np.nan)
        topics = [self.topics[int(t)] for t in rng.integers(0, len(self.topics), n)]
        submissions = numbered_ids("submission", source)
        return Table(
            "feedback",
            {
                "event_id": Column("text", numbered_ids("feedback", range(n))),
                "teacher_id": Column("text", [self.teachers[t] for t in teacher]),
                "student_id": Column("text", student_ids),
                "submission_id": Column("text", submissions),
                "feedback_text": Column("text", templated(rng, FEEDBACK_TEXTS, topics)),
                "feedback_type": Column("text", [kinds[k] for k in kind]),
                "created_at": Column("time", at),
                "score": Column("float", score),
            },
        )

    # -- live sessions -----------------------------------------------------------------------

    def live_class_engagement(self, n: int) -> Table:
        """Sessions of a teacher's class, some co-taught; each teacher's snapshots grow."""
        rng = self.rng("live_class_engagement")
        per_participant = 2 + MID_UPDATES
        # Enough sessions for n snapshots (the last ones are cut).
        sessions = math.ceil(1.3 * n / (per_participant * (1 + CO_TEACHER))) + 8
        teacher = pick(rng, self.teacher_weights, sessions)
        classes = [self.world.classes[t] for t in self.teachers]
        class_ids = [
            classes[t][int(u * len(classes[t]))]
            for t, u in zip(teacher, rng.random(sessions), strict=True)
        ]
        minutes = rng.integers(SESSION_MINUTES[0], SESSION_MINUTES[1] + 1, sessions)
        began = self.start + rng.random(sessions) * (self.span - minutes * 60.0)
        ends = began + minutes * 60.0
        co = (rng.random(sessions) < CO_TEACHER) & (len(self.teachers) > 1)
        other = (teacher + 1 + rng.integers(0, max(1, len(self.teachers) - 1), sessions)) % len(
            self.teachers
        )
        later = rng.integers(CO_TEACHER_JOINS_MINUTES[0], CO_TEACHER_JOINS_MINUTES[1] + 1, sessions)
        # Participants: every session's teacher, then the co-teachers.
        session = np.concatenate([np.arange(sessions), np.flatnonzero(co)])
        who = np.concatenate([teacher, other[co]])
        joined = np.concatenate([began, began[co] + later[co] * 60.0])
        by_session = np.argsort(session, kind="stable")  # a co-teacher after the teacher
        session, who, joined = session[by_session], who[by_session], joined[by_session]
        left = ends[session]
        # Snapshots: on joining, a few while it runs, the last one on leaving.
        updates = rng.poisson(MID_UPDATES, len(session))
        snapshots = 2 + updates
        participant = np.repeat(np.arange(len(session)), snapshots)[:n]
        count = len(participant)
        number, starts = group_starts(participant)
        index = np.arange(count) - starts[number]
        last = index == snapshots[participant] - 1
        moment = joined[participant] + rng.random(count) * (left - joined)[participant]
        moment = np.where(
            index == 0, joined[participant], np.where(last, left[participant], moment)
        )
        order = np.lexsort((moment, participant))
        moment = moment[order]
        duration = (moment - joined[participant]).astype(np.int64)
        elapsed = duration // 60
        polls = np.minimum(elapsed // POLL_MINUTES, POLLS_PER_SESSION)
        messages = running_max(
            (elapsed + np.floor(rng.random(count) * (elapsed + 2))).astype(np.float64), number
        ).astype(np.int64)
        poll_ids = numbered_ids("poll", range(len(session) * POLLS_PER_SESSION))
        session_ids = numbered_ids("session", range(sessions))
        return Table(
            "live_class_engagement",
            {
                "event_id": Column("text", numbered_ids("live_class_engagement", range(count))),
                "teacher_id": Column("text", [self.teachers[who[p]] for p in participant]),
                "class_id": Column("text", [class_ids[session[p]] for p in participant]),
                "session_id": Column("text", [session_ids[session[p]] for p in participant]),
                "joined_at": Column("time", joined[participant]),
                "left_at": Column("time", np.where(last, left[participant], np.nan)),
                "duration_seconds": Column("int", duration),
                "polls_launched": Column(
                    "array",
                    [
                        tuple(poll_ids[p * POLLS_PER_SESSION : p * POLLS_PER_SESSION + k])
                        for p, k in zip(participant, polls, strict=True)
                    ],
                ),
                "messages_sent": Column("int", messages),
            },
        )


def counts(config: Config) -> dict[str, int]:
    """How many events of each type: ``config.events`` shared by ``config.mix``."""
    total = sum(config.mix.values())
    shares = {kind: int(config.events * weight / total) for kind, weight in config.mix.items()}
    first = next(kind for kind, weight in config.mix.items() if weight > 0)
    shares[first] += config.events - sum(shares.values())
    return shares


def tables(config: Config) -> Iterator[Table]:
    """Every type's events (those the mix asks for), one table at a time."""
    world = Bulk(config)
    # In EVENT_TYPES' order: quizzes follow the lessons students study.
    for kind, n in ((kind, counts(config).get(kind, 0)) for kind in EVENT_TYPES):
        if n > 0:
            yield getattr(world, kind)(n)
