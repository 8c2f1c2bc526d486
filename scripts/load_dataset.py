"""Load a realistic data set of N unique events straight into PostgreSQL with COPY.

    .venv/bin/python -m scripts.load_dataset [--events 10000000] [--dsn DSN] [--days 120]

The shape follows scripts/eventgen.py (same type mix, Zipf-skewed students,
lessons, quizzes, threads and teachers; progress that only rises; repeated
quiz attempts ending in a pass or giving up; threads with replies and likes;
live sessions seen as growing snapshots), but it is generated with numpy
arrays instead of one Python object per event, so ten million events load in
minutes rather than hours. Every table is filled consistently: the history
tables and ``event_ledger`` row for row, ``lesson_progress`` and
``live_class_engagement`` folded in SQL from the same events with the merge
rules of docs/postgres.md, and ``activity_rollups`` (metric ``events``, one
minute buckets by arrival time) from the ledger. Only unique events are
loaded: duplicates are the persist path's business, not the reports'.

The database is created and migrated when missing (``shared.migrate``). Its
event tables are truncated first. Secondary indexes are dropped during the
COPY and rebuilt afterwards (much faster than maintaining them row by row).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from tqdm import tqdm

from scripts.eventgen import DEFAULT_MIX, SECTION_NAMES
from shared.migrate import ensure_database, migrate
from shared.models.events import (
    ActivityEvent,
    ContentActivity,
    Feedback,
    ForumActivity,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
)
from shared.repositories.postgres.tables import event_columns

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/activity_bench"
CHUNK = 200_000

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]

TABLES = (
    "event_ledger",
    "lesson_progress",
    "lesson_progress_events",
    "quiz_attempts",
    "forum_activity",
    "content_activity",
    "feedback",
    "live_class_engagement",
    "activity_rollups",
)
SECTIONS = [*SECTION_NAMES, "summary"]  # as every simulated lesson has them
# sections_read after reading the first k sections, as COPY array literals
# (sorted bytewise like the merged column).
SECTION_LITERALS = ["{" + ",".join(sorted(SECTIONS[:k])) + "}" for k in range(len(SECTIONS) + 1)]


@dataclass(frozen=True)
class World:
    students: int
    teachers: int
    lessons: int
    quizzes: int
    threads: int
    contents: int
    sessions: int
    start: float  # epoch seconds
    end: float


def ids(kind: int, count: int) -> list[str]:
    """Deterministic UUID strings for entity numbers 0..count-1 of one kind."""
    return [f"{kind:08x}-0000-4000-8000-{n:012x}" for n in range(count)]


def zipf_pick(rng: np.random.Generator, count: int, size: int, exponent: float = 0.9) -> Ints:
    """Draw entity numbers with Zipf-like skew, the ranks dealt out at random."""
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    rng.shuffle(weights)
    cumulative = np.cumsum(weights)
    picks = np.searchsorted(cumulative, rng.random(size) * cumulative[-1])
    picked: Ints = np.minimum(picks, count - 1).astype(np.int64)
    return picked


def mix64(x: Ints) -> NDArray[np.uint64]:
    """SplitMix64 finaliser: a stable pseudo-random value per key, vectorised."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unit(x: Ints, salt: int) -> Floats:
    """A stable uniform [0, 1) value per key."""
    return (mix64(x * 7919 + salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def ts(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def stored_columns(model: type[ActivityEvent]) -> tuple[str, ...]:
    """A type table's columns, in the order the rows below are written: the model's own."""
    return (*event_columns(model), "received_at")


class Sink:
    """Buffers COPY text rows per table and flushes them in chunks."""

    def __init__(self, conn: psycopg.Connection[Any], bar: tqdm[Any]) -> None:
        self.conn = conn
        self.bar = bar

    def copy(self, table: str, columns: Sequence[str], rows: Iterator[str], events: int) -> None:
        buffer = io.StringIO()
        count = 0
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                buffer.write(row)
                count += 1
                if count % CHUNK == 0:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
                    if events:
                        self.bar.update(CHUNK)
            copy.write(buffer.getvalue())
        if events:
            self.bar.update(count % CHUNK)


def ledger_rows(
    event_ids: list[str], kind: str, actors: list[str], subjects: list[str] | None, times: Floats
) -> Iterator[str]:
    for i, event_id in enumerate(event_ids):
        at = times[i]
        users = actors[i] if subjects is None else f"{actors[i]},{subjects[i]}"
        yield f"{event_id}\t{kind}\t{actors[i]}\t{{{users}}}\t{ts(at)}\t{ts(at + 2.0)}\n"


def lesson_progress(rng: np.random.Generator, w: World, n: int, base: int, sink: Sink) -> None:
    student_ids, lesson_ids = ids(1, w.students), ids(2, w.lessons)
    students = zipf_pick(rng, w.students, n)
    lessons = zipf_pick(rng, w.lessons, n)
    pair = students * w.lessons + lessons
    span = w.end - w.start
    started = w.start + unit(pair, 1) * span * 0.9
    # Time to finish: an hour to three weeks; a quarter of pairs never finish.
    duration = 3600 + unit(pair, 2) ** 2 * 21 * 86400
    duration = np.where(unit(pair, 3) < 0.25, 1e12, duration)
    at = started + rng.random(n) * (w.end - started)
    fraction = np.minimum(1.0, (at - started) / duration)
    progress = np.round(fraction * 100, 1)
    completed = np.where(fraction >= 1.0, started + duration, np.nan)
    watch = (fraction * (600 + unit(pair, 4) * 2400)).astype(np.int64)
    sections = np.ceil(fraction * len(SECTIONS)).astype(np.int64)
    event_ids = [f"10000000-0000-4000-8000-{base + i:012x}" for i in range(n)]
    s_ids = [student_ids[s] for s in students]

    def rows() -> Iterator[str]:
        for i in range(n):
            done = "\\N" if np.isnan(completed[i]) else ts(completed[i])
            yield (
                f"{event_ids[i]}\t{s_ids[i]}\t{lesson_ids[lessons[i]]}\t{ts(started[i])}\t"
                f"{done}\t{progress[i]}\t{watch[i]}\t{SECTION_LITERALS[sections[i]]}\t"
                f"{ts(at[i])}\t{ts(at[i] + 2.0)}\n"
            )

    sink.copy(
        "lesson_progress_events",
        stored_columns(LessonProgress),
        rows(),
        n,
    )
    sink.copy(LEDGER, LEDGER_COLUMNS, ledger_rows(event_ids, "lesson_progress", s_ids, None, at), 0)


LEDGER = "event_ledger"
LEDGER_COLUMNS = ("event_id", "type", "actor_id", "user_ids", "occurred_at", "received_at")


def quiz_attempts(rng: np.random.Generator, w: World, n: int, base: int, sink: Sink) -> None:
    student_ids, quiz_ids = ids(1, w.students), ids(3, w.quizzes)
    # Series of attempts by one student at one quiz: 1 to 8 attempts, the
    # last one passing unless the student gave up (a fifth of the series).
    lengths = np.minimum(rng.geometric(0.45, size=n), 8)
    ends = np.cumsum(lengths)
    series_count = int(np.searchsorted(ends, n)) + 1
    lengths = lengths[:series_count]
    lengths[-1] -= int(ends[series_count - 1] - n)
    students = zipf_pick(rng, w.students, series_count)
    quizzes = zipf_pick(rng, w.quizzes, series_count)
    gave_up = rng.random(series_count) < 0.2
    first = w.start + rng.random(series_count) * (w.end - w.start) * 0.95
    series = np.repeat(np.arange(series_count), lengths)
    offsets = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    number = offsets + 1
    last = number == lengths[series]
    passed = last & ~gave_up[series]
    at = np.minimum(first[series] + offsets * 3600 * (1 + rng.random(n) * 20), w.end - 1)
    # Ten questions, one point each; a pass needs 6.
    score = np.where(passed, rng.integers(6, 11, n), rng.integers(0, 6, n))
    seconds = rng.integers(60, 1800, n)
    right = rng.random((n, 10)) < (score[:, None] / 10.0)
    wrong_pick = rng.integers(0, 3, (n, 10))
    event_ids = [f"20000000-0000-4000-8000-{base + i:012x}" for i in range(n)]
    s_ids = [student_ids[students[k]] for k in series]

    def answers(i: int) -> str:
        parts = []
        for q in range(10):
            if q == 9:  # a multiple-choice question answered with a list
                value = '["a", "c"]' if right[i, q] else '["b"]'
            else:
                value = '"a"' if right[i, q] else '"' + "bcd"[wrong_pick[i, q]] + '"'
            parts.append(f'"q{q + 1}": {value}')
        return "{" + ", ".join(parts) + "}"

    def rows() -> Iterator[str]:
        for i in range(n):
            k = series[i]
            yield (
                f"{event_ids[i]}\t{s_ids[i]}\t{quiz_ids[quizzes[k]]}\t"
                f"30000000-0000-4000-8000-{base + i:012x}\t{number[i]}\t{answers(i)}\t"
                f"{float(score[i])}\t{ts(at[i])}\t{seconds[i]}\t{'t' if passed[i] else 'f'}\t"
                f"{ts(at[i] + 2.0)}\n"
            )

    sink.copy(
        "quiz_attempts",
        stored_columns(QuizAttempt),
        rows(),
        n,
    )
    sink.copy(LEDGER, LEDGER_COLUMNS, ledger_rows(event_ids, "quiz_attempt", s_ids, None, at), 0)


def forum_activity(rng: np.random.Generator, w: World, n: int, base: int, sink: Sink) -> None:
    student_ids, thread_ids = ids(1, w.students), ids(4, w.threads)
    # Every thread opens with a post; the rest are replies (45 %) and likes.
    threads_used = min(w.threads, max(1, n // 8))
    kind = np.full(n, 2, dtype=np.int64)  # 0 post, 1 reply, 2 like
    kind[:threads_used] = 0
    rest = rng.random(n - threads_used)
    kind[threads_used:] = np.where(rest < 0.53, 1, 2)
    thread = np.empty(n, dtype=np.int64)
    thread[:threads_used] = np.arange(threads_used)
    thread[threads_used:] = zipf_pick(rng, threads_used, n - threads_used)
    users = zipf_pick(rng, w.students, n, exponent=1.0)
    opened = w.start + rng.random(threads_used) * (w.end - w.start) * 0.9
    at = np.where(
        kind == 0,
        opened[thread],
        opened[thread] + rng.random(n) * (w.end - opened[thread]),
    )
    # A reply answers the opening post or an earlier reply of its thread
    # (approximated by any reply of the thread); a like targets any post or reply.
    writers = np.flatnonzero(kind < 2)
    parent = np.where(rng.random(n) < 0.7, thread, -1)  # -1: pick a reply below
    replies = np.flatnonzero(kind == 1)
    random_reply = replies[rng.integers(0, len(replies), n)] if len(replies) else thread
    like_target = writers[zipf_pick(rng, len(writers), n)]
    target = np.where(kind == 2, like_target, np.where(parent >= 0, parent, random_reply))
    target_thread = thread[target]
    # A like or reply lands in its target's thread and after it.
    thread = np.where(kind == 0, thread, target_thread)
    at = np.where(kind == 0, at, np.maximum(at, at[target] + 1.0))
    at = np.minimum(at, w.end - 1)
    event_ids = [f"40000000-0000-4000-8000-{base + i:012x}" for i in range(n)]
    post_ids = [f"50000000-0000-4000-8000-{base + i:012x}" for i in range(n)]
    u_ids = [student_ids[u] for u in users]

    def rows() -> Iterator[str]:
        for i in range(n):
            k = kind[i]
            t = target[i]
            if k == 0:
                post, action, content, parent_id = post_ids[i], "post", f"Question {i}", "\\N"
            elif k == 1:
                post, action, content, parent_id = post_ids[i], "reply", f"Reply {i}", post_ids[t]
            else:
                post, action, content, parent_id = post_ids[t], "like", "\\N", "\\N"
            yield (
                f"{event_ids[i]}\t{u_ids[i]}\t{post}\t{thread_ids[thread[i]]}\t{action}\t"
                f"{content}\t{ts(at[i])}\t{parent_id}\t{ts(at[i] + 2.0)}\n"
            )

    sink.copy(
        "forum_activity",
        stored_columns(ForumActivity),
        rows(),
        n,
    )
    sink.copy(LEDGER, LEDGER_COLUMNS, ledger_rows(event_ids, "forum_activity", u_ids, None, at), 0)


def content_activity(rng: np.random.Generator, w: World, n: int, base: int, sink: Sink) -> None:
    """Teachers create the lessons and quizzes the students take (each once, by one
    teacher), then assignments, and update them; a teacher's interest in a student
    (docs/access.md) follows from it as on a real platform."""
    teacher_ids = ids(5, w.teachers)
    contents = min(max(w.contents, w.lessons + w.quizzes), max(1, n // 4))
    item = np.empty(n, dtype=np.int64)
    item[:contents] = np.arange(contents)  # each item is created once, then updated
    item[contents:] = zipf_pick(rng, contents, n - contents)
    owner = zipf_pick(rng, w.teachers, contents)
    created = w.start + rng.random(contents) * (w.end - w.start) * 0.9
    at = np.where(
        np.arange(n) < contents,
        created[item],
        created[item] + rng.random(n) * (w.end - created[item]),
    )
    # Items 0.. are the lessons, then the quizzes, then assignments of their own.
    content_ids = ids(2, w.lessons) + ids(3, w.quizzes) + ids(7, contents)[w.lessons + w.quizzes :]
    kinds = ["lesson"] * w.lessons + ["quiz"] * w.quizzes
    content_type = kinds + ["assignment"] * (contents - len(kinds))
    event_ids = [f"60000000-0000-4000-8000-{base + i:012x}" for i in range(n)]
    t_ids = [teacher_ids[owner[c]] for c in item]

    def rows() -> Iterator[str]:
        for i in range(n):
            c = item[i]
            action, summary = ("created", "\\N") if i < contents else ("updated", "Edited")
            yield (
                f"{event_ids[i]}\t{t_ids[i]}\t{content_ids[c]}\t"
                f"{content_type[c]}\t{action}\t{ts(at[i])}\tContent {c}\t{summary}\t"
                f"{ts(at[i] + 2.0)}\n"
            )

    sink.copy(
        "content_activity",
        stored_columns(ContentActivity),
        rows(),
        n,
    )
    sink.copy(
        LEDGER, LEDGER_COLUMNS, ledger_rows(event_ids, "content_activity", t_ids, None, at), 0
    )


def feedback(rng: np.random.Generator, w: World, n: int, base: int, sink: Sink) -> None:
    teacher_ids, student_ids = ids(5, w.teachers), ids(1, w.students)
    teachers = zipf_pick(rng, w.teachers, n)
    students = zipf_pick(rng, w.students, n)
    at = w.start + rng.random(n) * (w.end - w.start - 1)
    kinds = rng.choice(np.array(["text", "rubric", "audio"]), n, p=[0.6, 0.3, 0.1])
    scored = rng.random(n) < 0.7
    score = np.round(rng.random(n) * 100, 1)
    event_ids = [f"80000000-0000-4000-8000-{base + i:012x}" for i in range(n)]
    t_ids = [teacher_ids[t] for t in teachers]
    s_ids = [student_ids[s] for s in students]

    scores = [str(score[i]) if scored[i] else "\\N" for i in range(n)]

    def rows() -> Iterator[str]:
        for i in range(n):
            yield (
                f"{event_ids[i]}\t{t_ids[i]}\t{s_ids[i]}\t90000000-0000-4000-8000-{base + i:012x}\t"
                f"Good work, check step {i % 7}.\t{kinds[i]}\t{ts(at[i])}\t"
                f"{scores[i]}\t{ts(at[i] + 2.0)}\n"
            )

    sink.copy(
        "feedback",
        stored_columns(Feedback),
        rows(),
        n,
    )
    sink.copy(LEDGER, LEDGER_COLUMNS, ledger_rows(event_ids, "feedback", t_ids, s_ids, at), 0)


def live_class_engagement(
    rng: np.random.Generator, w: World, n: int, base: int, sink: Sink
) -> None:
    """Snapshots of teachers in sessions, staged then folded into the merged table."""
    teacher_ids = ids(5, w.teachers)
    sessions = max(1, min(w.sessions, n // 6))
    session = np.sort(rng.integers(0, sessions, n))
    snapshot = np.arange(n) - np.searchsorted(session, session)  # 0, 1, 2... per session
    teacher = zipf_pick(rng, w.teachers, sessions)[session]
    joined = (w.start + rng.random(sessions) * (w.end - w.start) * 0.95)[session]
    duration = snapshot * 300 + rng.integers(0, 300, n)
    at = joined  # the event time of a live snapshot is joined_at
    counts = np.bincount(session, minlength=sessions)
    is_last = snapshot == counts[session] - 1
    messages = snapshot * 4 + rng.integers(0, 4, n)
    event_ids = [f"a0000000-0000-4000-8000-{base + i:012x}" for i in range(n)]
    t_ids = [teacher_ids[t] for t in teacher]

    def rows() -> Iterator[str]:
        for i in range(n):
            s = session[i]
            polls = ",".join(
                f"b0000000-0000-4000-8000-{s * 16 + p:012x}"
                for p in range(min(int(snapshot[i]), 15))
            )
            left = ts(joined[i] + duration[i]) if is_last[i] else "\\N"
            yield (
                f"{event_ids[i]}\t{t_ids[i]}\tc0000000-0000-4000-8000-{s % 5000:012x}\t"
                f"d0000000-0000-4000-8000-{s:012x}\t{ts(joined[i])}\t{left}\t{duration[i]}\t"
                f"{{{polls}}}\t{messages[i]}\t{ts(at[i] + 2.0)}\n"
            )

    sink.conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS load_live_events "
        "(LIKE live_class_engagement INCLUDING DEFAULTS)"
    )
    sink.conn.execute("TRUNCATE load_live_events")
    sink.copy(
        "load_live_events",
        stored_columns(LiveClassEngagement),
        rows(),
        n,
    )
    sink.copy(
        LEDGER,
        LEDGER_COLUMNS,
        ledger_rows(event_ids, "live_class_engagement", t_ids, None, at),
        0,
    )


FOLDS = (
    # lesson_progress from its history, with the merge rules of docs/postgres.md.
    # Progress only rises here, so the latest event's sections are the union.
    """
    INSERT INTO lesson_progress (student_id, lesson_id, started_at, completed_at,
        progress_percent, video_watch_time, sections_read, last_accessed_at, event_id,
        received_at, updated_at)
    SELECT a.student_id, a.lesson_id, a.started_at, a.completed_at, a.progress_percent,
        a.video_watch_time, l.sections_read, a.last_accessed_at, l.event_id, a.received_at, now()
    FROM (
        SELECT student_id, lesson_id, min(started_at) AS started_at,
            min(completed_at) AS completed_at, max(progress_percent) AS progress_percent,
            max(video_watch_time) AS video_watch_time, max(last_accessed_at) AS last_accessed_at,
            min(received_at) AS received_at
        FROM lesson_progress_events GROUP BY student_id, lesson_id
    ) a
    JOIN (
        SELECT DISTINCT ON (student_id, lesson_id) student_id, lesson_id, sections_read, event_id
        FROM lesson_progress_events
        ORDER BY student_id, lesson_id, last_accessed_at DESC, event_id DESC
    ) l USING (student_id, lesson_id)
    """,
    # The latest snapshot (greatest duration) carries every poll launched so far.
    """
    INSERT INTO live_class_engagement (session_id, teacher_id, class_id, joined_at, left_at,
        duration_seconds, polls_launched, messages_sent, event_id, received_at, updated_at)
    SELECT a.session_id, a.teacher_id, l.class_id, a.joined_at, a.left_at, a.duration_seconds,
        l.polls_launched, a.messages_sent, l.event_id, a.received_at, now()
    FROM (
        SELECT session_id, teacher_id, min(joined_at) AS joined_at, max(left_at) AS left_at,
            max(duration_seconds) AS duration_seconds, max(messages_sent) AS messages_sent,
            min(received_at) AS received_at
        FROM load_live_events GROUP BY session_id, teacher_id
    ) a
    JOIN (
        SELECT DISTINCT ON (session_id, teacher_id) session_id, teacher_id, class_id,
            polls_launched, event_id
        FROM load_live_events
        ORDER BY session_id, teacher_id, duration_seconds DESC, event_id DESC
    ) l USING (session_id, teacher_id)
    """,
    "DROP TABLE load_live_events",
    # What the roll-up timer would have written: unique events per type per
    # minute of arrival. With this session's triggers off (a row trigger per
    # roll-up row would take minutes), then the hour and day totals that
    # trigger keeps, in one statement (sql/014).
    "SET session_replication_role = replica",
    """
    INSERT INTO activity_rollups (bucket_start, bucket_seconds, metric, dimension, value)
    SELECT date_bin('60 seconds', received_at, timestamptz '2000-01-01 00:00:00+00'), 60,
        'events', type, count(*)
    FROM event_ledger
    GROUP BY 1, 4
    """,
    "RESET session_replication_role",
    "SELECT activity_event_totals_rebuild()",
)


def secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Indexes on the event tables that no constraint owns (safe to drop and rebuild)."""
    rows = conn.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
          AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
        """,
        (list(TABLES),),
    ).fetchall()
    # pg_get_indexdef writes a partitioned table's index as "ON ONLY parent"
    # (the parent's index alone, left invalid); rebuilt, it must cover every
    # partition.
    return [
        (str(name), str(definition).replace(" ON ONLY ", " ON ", 1)) for name, definition in rows
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--days", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    n = args.events
    started = time.monotonic()
    ensure_database(args.dsn)
    migrate(args.dsn)
    end = datetime.now(UTC) - timedelta(minutes=10)
    world = World(
        students=max(50, n // 200),
        teachers=max(5, n // 5000),
        lessons=max(10, n // 5000),
        quizzes=max(5, n // 10000),
        threads=max(10, n // 100),
        contents=max(10, n // 100),
        sessions=max(5, n // 60),
        start=(end - timedelta(days=args.days)).timestamp(),
        end=end.timestamp(),
    )
    print(world)
    rng = np.random.default_rng(args.seed)
    counts = {kind: int(n * share) for kind, share in DEFAULT_MIX.items()}
    counts["lesson_progress"] += n - sum(counts.values())
    steps: dict[str, Callable[[np.random.Generator, World, int, int, Sink], None]] = {
        "lesson_progress": lesson_progress,
        "quiz_attempt": quiz_attempts,
        "forum_activity": forum_activity,
        "content_activity": content_activity,
        "feedback": feedback,
        "live_class_engagement": live_class_engagement,
    }
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        # Remember the definitions in the database itself, so a load that
        # fails half-way still rebuilds them on the next run.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS load_dataset_indexes "
            "(name text PRIMARY KEY, definition text)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO load_dataset_indexes VALUES (%s, %s) ON CONFLICT DO NOTHING",
                secondary_indexes(conn),
            )
        indexes = [
            (str(name), str(definition))
            for name, definition in conn.execute(
                "SELECT name, definition FROM load_dataset_indexes ORDER BY name"
            ).fetchall()
        ]
        conn.execute("TRUNCATE " + ", ".join(TABLES))
        for name, _ in indexes:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        with tqdm(total=n, unit="ev", unit_scale=True, desc="COPY") as bar:
            sink = Sink(conn, bar)
            for kind, step in steps.items():
                bar.set_postfix_str(kind)
                step(rng, world, counts[kind], 0, sink)
        copied = time.monotonic()
        for statement in tqdm(FOLDS, desc="merged tables + roll-ups"):
            conn.execute(statement)
        for _, definition in tqdm(indexes, desc="indexes"):
            conn.execute(definition)
        invalid = conn.execute(
            "SELECT string_agg(indexrelid::regclass::text, ', ') FROM pg_index WHERE NOT indisvalid"
        ).fetchone()
        if invalid and invalid[0]:
            raise SystemExit(f"load_dataset: indexes left invalid: {invalid[0]}")
        conn.execute("DROP TABLE load_dataset_indexes")
        # Every table, the trigger-kept summaries included: without statistics
        # their plans are guesses, and without a visibility map their
        # index-only scans read the heap (measured: the forum and lesson
        # reports 3x slower before the summaries were vacuumed too).
        conn.execute("VACUUM ANALYZE")
        sizes = [
            (table, conn.execute(f"SELECT count(*) FROM {table}").fetchone()) for table in TABLES
        ]
        total = time.monotonic() - started
        # scripts/bench_reports.py prints this next to its figures.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS dataset_info "
            "(events bigint, seconds double precision, loaded_at timestamptz DEFAULT now())"
        )
        conn.execute("INSERT INTO dataset_info (events, seconds) VALUES (%s, %s)", (n, total))
    print(f"loaded {n:,} events in {total:.0f} s (COPY {copied - started:.0f} s)")
    for name, live in sizes:
        print(f"  {name:<24} {live[0] if live else 0:>12,} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
