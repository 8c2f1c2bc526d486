"""Benchmark the table archive against raw entity-group transactions on the same account.

Generates realistic events, then in fresh tables measures
(a) ``ArchiveRepository.archive_events`` on queue-message-sized chunks, and
(b) plain ``submit_transaction`` of the same entities, grouped per partition
    in batches of 100 (the best the service allows),
both with the same number of concurrent writers, and prints entities/s and
the ratio a/b. Every table it creates is deleted at the end.

    .venv/bin/python -m scripts.bench_archive [--events 20000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from azure.data.tables import TableServiceClient, UpdateMode

from shared.models.events import ActivityEvent, event_adapter
from shared.repositories.archive import (
    ArchiveRepository,
    chunk_entities,
    event_entities,
    table_name,
)
from shared.settings import get_settings

Message = list[ActivityEvent]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


class Generator:
    """A small platform: students, teachers, lessons, quizzes, threads."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.students = _ids(2_000)
        self.teachers = _ids(100)
        self.lessons = _ids(200)
        self.quizzes = _ids(100)
        self.threads = _ids(300)
        self.now = datetime.now(UTC) - timedelta(minutes=10)

    def _start(self) -> datetime:
        # Activity over the last 40 days: most messages fall in one monthly table,
        # some in the previous one.
        return self.now - timedelta(seconds=self.rng.uniform(3600, 40 * 86400))

    def student_session(self, size: int) -> Message:
        """One student's burst: progress heartbeats, quiz attempts, forum posts and likes."""
        rng, student, t = self.rng, self.rng.choice(self.students), self._start()
        lesson, started = rng.choice(self.lessons), t
        events: list[dict[str, Any]] = []
        for i in range(size):
            t += timedelta(seconds=rng.uniform(5, 30))
            kind = rng.random()
            if kind < 0.7:
                events.append(
                    {
                        "type": "lesson_progress",
                        "student_id": student,
                        "lesson_id": lesson,
                        "started_at": _iso(started),
                        "progress_percent": min(100.0, i * 1.5),
                        "video_watch_time": i * 20,
                        "sections_read": [f"section-{n}" for n in range(1 + i // 10)],
                        "last_accessed_at": _iso(t),
                    }
                )
            elif kind < 0.85:
                events.append(
                    {
                        "type": "quiz_attempt",
                        "student_id": student,
                        "quiz_id": rng.choice(self.quizzes),
                        "attempt_id": str(uuid.uuid4()),
                        "attempt_number": rng.randint(1, 3),
                        "answers": {f"q{q}": rng.choice("abcd") for q in range(10)},
                        "score": float(rng.randint(0, 10)),
                        "submitted_at": _iso(t),
                        "duration_seconds": rng.randint(60, 900),
                        "is_passed": rng.random() < 0.6,
                    }
                )
            else:
                action = rng.choice(["post", "reply", "like"])
                events.append(
                    {
                        "type": "forum_activity",
                        "user_id": student,
                        "post_id": str(uuid.uuid4()),
                        "thread_id": rng.choice(self.threads),
                        "action_type": action,
                        "created_at": _iso(t),
                    }
                    | ({} if action == "like" else {"content": "Could someone explain " * 10})
                    | ({"parent_post_id": str(uuid.uuid4())} if action == "reply" else {})
                )
        return [self._parse(e) for e in events]

    def teacher_session(self, size: int) -> Message:
        """One teacher's burst: grading (feedback to many students), content, a live class."""
        rng, teacher, t = self.rng, self.rng.choice(self.teachers), self._start()
        events: list[dict[str, Any]] = []
        for _ in range(size):
            t += timedelta(seconds=rng.uniform(10, 60))
            kind = rng.random()
            if kind < 0.6:
                events.append(
                    {
                        "type": "feedback",
                        "teacher_id": teacher,
                        "student_id": rng.choice(self.students),
                        "submission_id": str(uuid.uuid4()),
                        "feedback_text": "Well argued; revisit the second step. " * 5,
                        "feedback_type": "text",
                        "created_at": _iso(t),
                        "score": float(rng.randint(0, 10)),
                    }
                )
            elif kind < 0.9:
                events.append(
                    {
                        "type": "content_activity",
                        "teacher_id": teacher,
                        "content_id": rng.choice(self.lessons),
                        "content_type": "lesson",
                        "action": "updated",
                        "timestamp": _iso(t),
                        "title": "Quadratic equations",
                        "changes_summary": "Fixed a typo in section 2.",
                    }
                )
            else:
                events.append(
                    {
                        "type": "live_class_engagement",
                        "teacher_id": teacher,
                        "class_id": str(uuid.uuid4()),
                        "session_id": str(uuid.uuid4()),
                        "joined_at": _iso(t - timedelta(minutes=45)),
                        "left_at": _iso(t),
                        "duration_seconds": 2700,
                        "polls_launched": _ids(3),
                        "messages_sent": rng.randint(0, 50),
                    }
                )
        return [self._parse(e) for e in events]

    def _parse(self, raw: dict[str, Any]) -> ActivityEvent:
        event: ActivityEvent = event_adapter.validate_python(raw | {"event_id": str(uuid.uuid4())})
        return event

    def grouped(self, total: int, size: int) -> list[Message]:
        """Each message holds one user's events (a session flushed by the client)."""
        messages = []
        while total > 0:
            n = min(size, total)
            teacher = self.rng.random() < 0.1
            messages.append(self.teacher_session(n) if teacher else self.student_session(n))
            total -= n
        return messages

    def interleaved(self, total: int, size: int) -> list[Message]:
        """The same kind of events shuffled across messages: the worst case for batching."""
        events = [e for m in self.grouped(total, size) for e in m]
        self.rng.shuffle(events)
        return [events[i : i + size] for i in range(0, len(events), size)]


def _progress(label: str, total: int) -> Callable[[int], None]:
    step = max(1, total // 10)

    def report(done: int) -> None:
        if done % step == 0 or done == total:
            print(f"  {label}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def _run(jobs: Sequence[Callable[[], object]], concurrency: int, label: str) -> float:
    """Run the jobs with ``concurrency`` writers; return the elapsed seconds."""
    report = _progress(label, len(jobs))
    done = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
            done += 1
            report(done)
    return time.perf_counter() - start


def bench_archive(connection: str, prefix: str, messages: list[Message], concurrency: int) -> float:
    archive = ArchiveRepository(connection, prefix)
    received = datetime.now(UTC)
    try:
        jobs = [partial(archive.archive_events, m, received) for m in messages]
        return _run(jobs, concurrency, "archive_events")
    finally:
        archive.close()


def bench_raw(
    service: TableServiceClient,
    prefix: str,
    messages: list[Message],
    concurrency: int,
    lone_upserts: bool,
) -> float:
    """Prepared entities, grouped per partition over the whole run, 100 per transaction.

    With ``lone_upserts`` a partition's single entity goes as a plain upsert (as
    the archive does) instead of a one-operation transaction.
    """
    received = datetime.now(UTC)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in (e for m in messages for e in m):
        table = table_name(prefix, event.occurred_at)
        for entity in event_entities(event, received):
            groups.setdefault((table, entity["PartitionKey"]), []).append(entity)
    for table in {table for table, _ in groups}:
        service.create_table_if_not_exists(table)
    clients = {table: service.get_table_client(table) for table, _ in groups}

    def write(table: str, chunk: list[dict[str, Any]]) -> None:
        if lone_upserts and len(chunk) == 1:
            clients[table].upsert_entity(chunk[0], mode=UpdateMode.REPLACE)
        else:
            clients[table].submit_transaction(
                [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in chunk]
            )

    jobs = [
        partial(write, table, chunk)
        for (table, _), entities in groups.items()
        for chunk in chunk_entities(entities)
    ]
    return _run(jobs, concurrency, f"raw{' + lone upserts' if lone_upserts else ''}")


def drop_tables(service: TableServiceClient, prefix: str) -> None:
    for table in service.list_tables():
        if table.name.startswith(prefix):
            service.delete_table(table.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--message-events", type=int, default=100, help="events per message")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent writers")
    parser.add_argument("--scenario", choices=["grouped", "interleaved", "both"], default="both")
    parser.add_argument("--connection", default=get_settings().archive_connection)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    service = TableServiceClient.from_connection_string(args.connection)
    run = f"bench{secrets.token_hex(3)}"
    generator = Generator(random.Random(args.seed))
    scenarios = ["grouped", "interleaved"] if args.scenario == "both" else [args.scenario]
    results = []
    try:
        for scenario in scenarios:
            print(f"{scenario}: generating {args.events} events", file=sys.stderr)
            messages = getattr(generator, scenario)(args.events, args.message_events)
            received = datetime.now(UTC)
            entities = sum(len(event_entities(e, received)) for m in messages for e in m)
            tag = scenario[0]
            archive_s = bench_archive(args.connection, f"{run}{tag}a", messages, args.concurrency)
            # Each phase starts from the same emulator state: Azurite slows
            # down as it holds more entities, which would favour the first phase.
            drop_tables(service, run)
            raw_s = bench_raw(service, f"{run}{tag}r", messages, args.concurrency, False)
            drop_tables(service, run)
            best_s = bench_raw(service, f"{run}{tag}b", messages, args.concurrency, True)
            drop_tables(service, run)
            results.append((scenario, len(messages), entities, archive_s, raw_s, best_s))
    finally:
        drop_tables(service, run)

    print(
        f"\n{args.events} events per scenario, {args.message_events} per message, "
        f"{args.concurrency} concurrent writers, {args.connection.split(';')[0]}"
    )
    print("entities/s: (a) archive_events per message; (b) raw submit_transaction, every")
    print("group a transaction; (b') the same with a group of one as a plain upsert.")
    header = ("scenario", "messages", "entities", "(a)", "(b)", "a/b", "(b')", "a/b'")
    print("{:<12} {:>8} {:>8} {:>7} {:>7} {:>5} {:>7} {:>5}".format(*header))
    for scenario, count, entities, archive_s, raw_s, best_s in results:
        print(
            f"{scenario:<12} {count:>8} {entities:>8} {entities / archive_s:>7,.0f} "
            f"{entities / raw_s:>7,.0f} {raw_s / archive_s:>5.2f} "
            f"{entities / best_s:>7,.0f} {best_s / archive_s:>5.2f}"
        )


if __name__ == "__main__":
    main()
