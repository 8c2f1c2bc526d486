"""Benchmark the PostgreSQL persist path against a raw COPY of the same rows.

In a database of its own (``bench_pg_<random>``, created, migrated and dropped
here) it generates N realistic events and, for each round, on emptied tables:

(a) persist: ``PostgresRepository.persist_events`` on messages of ~100 events,
    one transaction per message, as the queue trigger calls it;
(b) raw COPY: one transaction, one ``COPY ... FROM STDIN`` per table with the
    same rows (ledger, history tables, and the final merged rows), built from
    the same event objects;

then prints events/s of both (median over the rounds) and the ratio a/b
(median of the rounds' ratios). It also times (c) redelivering every message
of (a), which must store nothing.

    .venv/bin/python -m scripts.bench_postgres [--events 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from shared.migrate import migrate
from shared.models.events import (
    ActivityEvent,
    ContentActivity,
    Feedback,
    ForumActivity,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
)
from shared.repositories.postgres import PostgresRepository
from shared.repositories.postgres.tables import (
    HISTORY_TABLES,
    MERGED_TABLES,
    TYPE_BY_MODEL,
    event_columns,
    merge_rows,
)
from shared.settings import get_settings

# Share of each type in the generated stream (progress heartbeats dominate).
MIX: dict[str, float] = {
    "lesson_progress": 0.40,
    "forum_activity": 0.25,
    "quiz_attempt": 0.15,
    "live_class_engagement": 0.10,
    "content_activity": 0.05,
    "feedback": 0.05,
}
TABLES = ("event_ledger", *HISTORY_TABLES.values(), *(spec.table for spec in MERGED_TABLES))
LEDGER_COLUMNS = ("event_id", "type", "actor_id", "user_ids", "occurred_at", "received_at")


class Platform:
    """A small platform whose users produce a plausible stream of events."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.students = self._ids(5_000)
        self.teachers = self._ids(200)
        self.lessons = self._ids(400)
        self.quizzes = self._ids(200)
        self.threads = self._ids(1_000)
        self.classes = self._ids(100)
        self.posts: list[tuple[uuid.UUID, uuid.UUID]] = []  # (post_id, thread_id)
        # Lesson progress and live sessions evolve: later snapshots grow.
        self.progress: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]] = {}
        self.sessions: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]] = {}
        self.progress_keys: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.session_keys: list[tuple[uuid.UUID, uuid.UUID]] = []

    def _ids(self, count: int) -> list[uuid.UUID]:
        return [uuid.UUID(int=self.rng.getrandbits(128), version=4) for _ in range(count)]

    def _id(self) -> uuid.UUID:
        return self._ids(1)[0]

    def _moment(self) -> datetime:
        # Spread over the last six months: several monthly partitions.
        return self.now - timedelta(seconds=self.rng.randint(60, 180 * 86_400))

    def event(self) -> ActivityEvent:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        make: Callable[[], ActivityEvent] = getattr(self, kind)
        return make()

    def lesson_progress(self) -> LessonProgress:
        # Mostly students coming back to a lesson they started.
        if self.progress_keys and self.rng.random() < 0.75:
            key = self.rng.choice(self.progress_keys)
        else:
            key = (self.rng.choice(self.students), self.rng.choice(self.lessons))
        state = self.progress.get(key)
        if state is None:
            self.progress_keys.append(key)
            started = self._moment()
            state = self.progress[key] = {"started_at": started, "at": started, "percent": 0.0}
            state.update(watch=0, sections=[])
        state["at"] = min(state["at"] + timedelta(minutes=self.rng.randint(1, 90)), self.now)
        state["percent"] = min(100.0, state["percent"] + self.rng.uniform(2, 25))
        state["watch"] += self.rng.randint(10, 600)
        section = f"section-{self.rng.randint(1, 12)}"
        if section not in state["sections"]:
            state["sections"].append(section)
        return LessonProgress(
            type="lesson_progress",
            event_id=self._id(),
            student_id=key[0],
            lesson_id=key[1],
            started_at=state["started_at"],
            completed_at=state["at"] if state["percent"] >= 100.0 else None,
            progress_percent=round(state["percent"], 2),
            video_watch_time=state["watch"],
            sections_read=list(state["sections"]),
            last_accessed_at=state["at"],
        )

    def quiz_attempt(self) -> QuizAttempt:
        score = float(self.rng.randint(0, 100))
        questions = self.rng.randint(5, 20)
        return QuizAttempt(
            type="quiz_attempt",
            event_id=self._id(),
            student_id=self.rng.choice(self.students),
            quiz_id=self.rng.choice(self.quizzes),
            attempt_id=self._id(),
            attempt_number=self.rng.randint(1, 4),
            answers={f"q{n}": self.rng.choice(["a", "b", "c", "d"]) for n in range(questions)},
            score=score,
            submitted_at=self._moment(),
            duration_seconds=self.rng.randint(60, 2_400),
            is_passed=score >= 60,
        )

    def forum_activity(self) -> ForumActivity:
        action = self.rng.choice(["post", "reply", "like"]) if self.posts else "post"
        post_id, thread_id, parent, content = self._id(), self.rng.choice(self.threads), None, None
        if action == "post":
            content = " ".join(["Lorem ipsum dolor sit amet."] * self.rng.randint(1, 30))
            self.posts.append((post_id, thread_id))
        elif action == "reply":
            parent, thread_id = self.rng.choice(self.posts)
            content = " ".join(["Thanks, that helps."] * self.rng.randint(1, 10))
            self.posts.append((post_id, thread_id))
        else:
            post_id, thread_id = self.rng.choice(self.posts)
        return ForumActivity(
            type="forum_activity",
            event_id=self._id(),
            user_id=self.rng.choice(self.students),
            post_id=post_id,
            thread_id=thread_id,
            action_type=action,
            content=content,
            created_at=self._moment(),
            parent_post_id=parent,
        )

    def content_activity(self) -> ContentActivity:
        action = self.rng.choice(["created", "updated"])
        return ContentActivity(
            type="content_activity",
            event_id=self._id(),
            teacher_id=self.rng.choice(self.teachers),
            content_id=self._id(),
            content_type=self.rng.choice(["lesson", "quiz", "assignment"]),
            action=action,
            timestamp=self._moment(),
            title=f"Unit {self.rng.randint(1, 40)}: fractions and ratios",
            changes_summary="Reworded question 3 and fixed a typo."
            if action == "updated"
            else None,
        )

    def feedback(self) -> Feedback:
        scored = self.rng.random() < 0.6
        return Feedback(
            type="feedback",
            event_id=self._id(),
            teacher_id=self.rng.choice(self.teachers),
            student_id=self.rng.choice(self.students),
            submission_id=self._id(),
            feedback_text="Clear reasoning; show the intermediate steps. " * self.rng.randint(1, 8),
            feedback_type=self.rng.choice(["text", "rubric", "audio"]),
            created_at=self._moment(),
            score=float(self.rng.randint(0, 10)) if scored else None,
        )

    def live_class_engagement(self) -> LiveClassEngagement:
        if self.session_keys and self.rng.random() < 0.8:
            key = self.rng.choice(self.session_keys)
        else:
            key = (self._id(), self.rng.choice(self.teachers))
            self.session_keys.append(key)
            joined = self._moment() - timedelta(hours=2)
            self.sessions[key] = {"joined": joined, "class": self.rng.choice(self.classes)}
            self.sessions[key].update(seconds=0, polls=[], messages=0)
        state = self.sessions[key]
        state["seconds"] += self.rng.randint(60, 900)
        state["messages"] += self.rng.randint(0, 5)
        if self.rng.random() < 0.3:
            state["polls"].append(self._id())
        ended = state["seconds"] > 3_000
        return LiveClassEngagement(
            type="live_class_engagement",
            event_id=self._id(),
            teacher_id=key[1],
            class_id=state["class"],
            session_id=key[0],
            joined_at=state["joined"],
            left_at=min(state["joined"] + timedelta(seconds=state["seconds"]), self.now)
            if ended
            else None,
            duration_seconds=state["seconds"],
            polls_launched=list(state["polls"]),
            messages_sent=state["messages"],
        )


def generate(count: int, seed: int) -> list[ActivityEvent]:
    platform = Platform(random.Random(seed), datetime.now(UTC) - timedelta(minutes=1))
    return [platform.event() for _ in range(count)]


# --- the two ways in ---------------------------------------------------------------------------


def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
        # Start each measurement without a pending checkpoint's I/O.
        conn.execute("CHECKPOINT")


def run_persist(
    repository: PostgresRepository,
    messages: Sequence[Sequence[ActivityEvent]],
    received_at: datetime,
    workers: int,
    label: str,
) -> tuple[float, int]:
    """Seconds taken and events newly stored."""
    step = max(1, len(messages) // 10)
    stored = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda m: repository.persist_events(m, received_at), messages)
        for done, count in enumerate(results, start=1):
            stored += count
            if done % step == 0 or done == len(messages):
                print(f"    {label}: {done}/{len(messages)} messages", flush=True)
    return time.perf_counter() - started, stored


def copy_rows(events: Sequence[ActivityEvent], received_at: datetime) -> dict[str, list[Any]]:
    """Every row the persist path ends up with, ready for COPY."""
    rows: dict[str, list[Any]] = {table: [] for table in TABLES}
    by_model: dict[type[ActivityEvent], list[dict[str, Any]]] = {}
    for event in events:
        rows["event_ledger"].append(
            (
                event.event_id,
                TYPE_BY_MODEL[type(event)],
                event.actor_id,
                list(event.user_ids),
                event.occurred_at,
                received_at,
            )
        )
        by_model.setdefault(type(event), []).append(event.model_dump())
    for model, table in HISTORY_TABLES.items():
        columns = event_columns(model)
        rows[table] = [
            (*(Jsonb(d[c]) if c == "answers" else d[c] for c in columns), received_at)
            for d in by_model.get(model, [])
        ]
    for spec in MERGED_TABLES:
        merged = merge_rows(spec, by_model.get(spec.model, [])).values()
        rows[spec.table] = [(*(m[c] for c in spec.columns), received_at) for m in merged]
    return rows


def table_columns(table: str) -> tuple[str, ...]:
    if table == "event_ledger":
        return LEDGER_COLUMNS
    for model, history in HISTORY_TABLES.items():
        if history == table:
            return (*event_columns(model), "received_at")
    spec = next(spec for spec in MERGED_TABLES if spec.table == table)
    return (*spec.columns, "received_at")


def run_copy(
    dsn: str, events: Sequence[ActivityEvent], received_at: datetime
) -> tuple[float, float, int]:
    """Seconds taken (all, COPY alone) and rows written."""
    started = time.perf_counter()
    rows = copy_rows(events, received_at)
    built = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.transaction(), conn.cursor() as cursor:
        for table, table_rows in rows.items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, table_columns(table))),
            )
            with cursor.copy(statement) as copy:
                for row in table_rows:
                    copy.write_row(row)
            print(f"    copy: {table} {len(table_rows)} rows", flush=True)
    finished = time.perf_counter()
    return finished - started, finished - built, sum(len(r) for r in rows.values())


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--message-size", type=int, default=100, help="events per queue message")
    parser.add_argument("--rounds", type=int, default=3, help="report the median of this many")
    parser.add_argument("--workers", type=int, default=1, help="messages persisted concurrently")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--server-dsn",
        default=get_settings().postgres_dsn,
        help="any DSN of the server to use (default: POSTGRES_DSN); its database is not touched",
    )
    args = parser.parse_args()

    name = f"bench_pg_{secrets.token_hex(4)}"
    admin_dsn = make_conninfo(args.server_dsn, dbname="postgres")
    dsn = make_conninfo(args.server_dsn, dbname=name)
    print(f"generating {args.events} events (seed {args.seed}) ...", flush=True)
    events = generate(args.events, args.seed)
    counts = {t: sum(1 for e in events if TYPE_BY_MODEL[type(e)] == t) for t in MIX}
    print("  mix: " + ", ".join(f"{t} {n}" for t, n in counts.items()), flush=True)
    size = args.message_size
    messages = [events[i : i + size] for i in range(0, len(events), size)]
    received_at = datetime.now(UTC)

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    print(f"created database {name}", flush=True)
    persist_times: list[float] = []
    redelivery_times: list[float] = []
    copy_times: list[float] = []
    copy_only_times: list[float] = []
    rows_written = 0
    try:
        migrate(dsn)
        repository = PostgresRepository(dsn, min_size=args.workers, max_size=args.workers)
        with repository:
            repository.ping()
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number}/{args.rounds}", flush=True)
                truncate(dsn)
                seconds, stored = run_persist(
                    repository, messages, received_at, args.workers, "persist"
                )
                if stored != len(events):
                    raise SystemExit(f"persist stored {stored} of {len(events)} events")
                persist_times.append(seconds)
                seconds, stored = run_persist(
                    repository, messages, received_at, args.workers, "redeliver"
                )
                if stored != 0:
                    raise SystemExit(f"redelivery stored {stored} events again")
                redelivery_times.append(seconds)
                truncate(dsn)
                seconds, copy_only, rows_written = run_copy(dsn, events, received_at)
                copy_times.append(seconds)
                copy_only_times.append(copy_only)
                print(
                    f"  persist {len(events) / persist_times[-1]:,.0f} events/s, "
                    f"raw COPY {len(events) / seconds:,.0f} events/s",
                    flush=True,
                )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        print(f"dropped database {name}", flush=True)

    def rate(times: list[float]) -> float:
        return len(events) / statistics.median(times)

    persist_rate, copy_rate = rate(persist_times), rate(copy_times)
    print()
    print(
        f"events: {len(events)} in {len(messages)} messages of {size}, "
        f"{args.workers} worker(s), median of {args.rounds} round(s)"
    )
    print(f"(a) persist_events:     {persist_rate:>10,.0f} events/s")
    print(
        f"(b) raw COPY:           {copy_rate:>10,.0f} events/s "
        f"({rows_written} rows; COPY alone, rows prebuilt: {rate(copy_only_times):,.0f} events/s)"
    )
    print(f"(c) redelivery (dupes): {rate(redelivery_times):>10,.0f} events/s")
    # Each round's a and b ran back to back: their ratio is steadier than the
    # rates themselves on a machine with other load.
    ratios = sorted(c / p for p, c in zip(persist_times, copy_times, strict=True))
    print(
        f"ratio a/b: {statistics.median(ratios):.2f} (median of rounds; "
        f"min {ratios[0]:.2f}, max {ratios[-1]:.2f}; target >= 0.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
