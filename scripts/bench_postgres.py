"""Benchmark the PostgreSQL persist path against a raw COPY of the same rows.

In a database of its own (``bench_pg_<random>``, created, migrated and dropped
here) it generates N events of the simulator's platform over six months
(``scripts.eventgen``) and, for each round, on emptied tables:

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
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from scripts.benchlib import Bench, BenchResources, log, progress
from scripts.benchlib.floors import COPY_TABLES, copy_into, copy_rows
from scripts.eventgen import Config, world_events
from shared.models.events import (
    ActivityEvent,
    event_adapter,
)
from shared.repositories.postgres import PostgresRepository
from shared.repositories.postgres.tables import TYPE_BY_MODEL
from shared.settings import get_settings


def generate(count: int, seed: int) -> list[ActivityEvent]:
    """``count`` unique events of the simulator's platform, over six months (so several
    monthly partitions), as the models the persist path takes."""
    config = Config(
        events=count, seed=seed, days=180, students=5_000, teachers=200, lessons=400, quizzes=200
    )
    return [event_adapter.validate_python(raw) for raw in world_events(config)]


# --- the two ways in ---------------------------------------------------------------------------


def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, COPY_TABLES)))
        )
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
    report = progress(f"{label}: messages", len(messages))
    stored = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda m: repository.persist_events(m, received_at), messages)
        for done, count in enumerate(results, start=1):
            stored += count
            report(done)
    return time.perf_counter() - started, stored


def run_copy(
    dsn: str, events: Sequence[ActivityEvent], received_at: datetime
) -> tuple[float, float, int]:
    """Seconds taken (all, COPY alone) and rows written."""
    started = time.perf_counter()
    rows = copy_rows(events, received_at)
    copying = copy_into(dsn, rows)
    return time.perf_counter() - started, copying, sum(len(r) for r in rows.values())


# --- main ----------------------------------------------------------------------------------------


BENCH = Bench(__doc__, seed=7, events=50_000)
BENCH.add("--message-size", type=int, default=100, help="events per queue message")
BENCH.add("--rounds", type=int, default=3, help="report the median of this many")
BENCH.add("--workers", type=int, default=1, help="messages persisted concurrently")
BENCH.add(
    "--server-dsn",
    default=get_settings().postgres_dsn,
    help="any DSN of the server to use (default: POSTGRES_DSN); its database is not touched",
)


def bench(args: argparse.Namespace) -> int:
    log(f"generating {args.events} events (seed {args.seed}) ...")
    events = generate(args.events, args.seed)
    counts = Counter(TYPE_BY_MODEL[type(e)] for e in events)
    log("  mix: " + ", ".join(f"{t} {n}" for t, n in counts.most_common()))
    size = args.message_size
    messages = [events[i : i + size] for i in range(0, len(events), size)]
    received_at = datetime.now(UTC)

    persist_times: list[float] = []
    redelivery_times: list[float] = []
    copy_times: list[float] = []
    copy_only_times: list[float] = []
    rows_written = 0
    resources = BenchResources("pg", server_dsn=args.server_dsn, uses=frozenset({"database"}))
    with resources:
        dsn = resources.dsn
        repository = PostgresRepository(dsn, min_size=args.workers, max_size=args.workers)
        with repository:
            repository.ping()
            for round_number in range(1, args.rounds + 1):
                log(f"round {round_number}/{args.rounds}")
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
                log(
                    f"  persist {len(events) / persist_times[-1]:,.0f} events/s, "
                    f"raw COPY {len(events) / seconds:,.0f} events/s"
                )

    def rate(times: list[float]) -> float:
        return len(events) / statistics.median(times)

    persist_rate, copy_rate = rate(persist_times), rate(copy_times)
    print()
    print(
        f"events: {len(events)} in {len(messages)} messages of {size}, "
        f"{args.workers} worker(s), median of {args.rounds} round(s)"
    )
    print("  mix: " + ", ".join(f"{t} {n}" for t, n in counts.most_common()))
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


def main(argv: Sequence[str] | None = None) -> int:
    return BENCH.run(bench, argv)


if __name__ == "__main__":
    sys.exit(main())
