"""Benchmark the table archive against raw entity-group transactions on the same account.

Generates events of the simulator's platform (``scripts.eventgen``, 40 days), then in
fresh tables measures
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
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from azure.data.tables import TableServiceClient

from scripts.benchlib import Bench, BenchResources, log
from scripts.benchlib.floors import partition_groups, run_jobs, write_transactions
from scripts.eventgen import Config, world_events
from shared.models.events import ActivityEvent, event_adapter
from shared.repositories.archive import ArchiveRepository
from shared.repositories.archive_entities import event_entities
from shared.settings import get_settings

Message = list[ActivityEvent]


def user_of(event: ActivityEvent) -> uuid.UUID:
    return event.actor_id


def generate(total: int, seed: int) -> list[ActivityEvent]:
    """``total`` unique events of the simulator's platform over the last 40 days: most
    fall in one monthly table, some in the previous one. The platform's default size
    (200 students, 20 teachers), so a user has about a message's worth of events."""
    config = Config(events=total, seed=seed, days=40)
    return [event_adapter.validate_python(raw) for raw in world_events(config)]


def grouped(events: Sequence[ActivityEvent], size: int) -> list[Message]:
    """Each message holds one user's events (a session flushed by the client)."""
    by_user: dict[uuid.UUID, list[ActivityEvent]] = {}
    for event in events:
        by_user.setdefault(user_of(event), []).append(event)
    return [mine[i : i + size] for mine in by_user.values() for i in range(0, len(mine), size)]


def interleaved(events: Sequence[ActivityEvent], size: int, rng: random.Random) -> list[Message]:
    """The same events shuffled across messages: the worst case for batching."""
    shuffled = list(events)
    rng.shuffle(shuffled)
    return [shuffled[i : i + size] for i in range(0, len(shuffled), size)]


def bench_archive(connection: str, prefix: str, messages: list[Message], concurrency: int) -> float:
    archive = ArchiveRepository(connection, prefix)
    received = datetime.now(UTC)
    try:
        jobs = [partial(archive.archive_events, m, received) for m in messages]
        return run_jobs(jobs, concurrency, "archive_events")
    finally:
        archive.close()


def bench_raw(
    service: TableServiceClient,
    prefix: str,
    messages: list[Message],
    concurrency: int,
    lone_upserts: bool,
) -> float:
    """Prepared entities, grouped per partition over the whole run, 100 per transaction."""
    groups = partition_groups([e for m in messages for e in m], prefix, datetime.now(UTC))
    return write_transactions(service, groups, concurrency, lone_upserts)


BENCH = Bench(__doc__, seed=1, events=20_000, concurrency=8)
BENCH.add("--message-events", type=int, default=100, help="events per message")
BENCH.add("--scenario", choices=["grouped", "interleaved", "both"], default="both")
BENCH.add("--connection", default=get_settings().archive_connection)


def bench(args: argparse.Namespace) -> int:
    log(f"generating {args.events} events")
    events = generate(args.events, args.seed)
    scenarios = ["grouped", "interleaved"] if args.scenario == "both" else [args.scenario]
    results = []
    resources = BenchResources("archive", storage=args.connection, uses=frozenset({"storage"}))
    with resources:
        service = TableServiceClient.from_connection_string(args.connection)
        run = resources.table_prefix
        try:
            for scenario in scenarios:
                if scenario == "grouped":
                    messages = grouped(events, args.message_events)
                else:
                    messages = interleaved(events, args.message_events, random.Random(args.seed))
                log(f"{scenario}: {len(messages)} messages")
                received = datetime.now(UTC)
                entities = sum(len(event_entities(e, received)) for m in messages for e in m)
                tag = scenario[0]
                archive_s = bench_archive(
                    args.connection, f"{run}{tag}a", messages, args.concurrency
                )
                # Each phase starts from the same emulator state: Azurite slows
                # down as it holds more entities, which would favour the first phase.
                resources.delete_tables()
                raw_s = bench_raw(service, f"{run}{tag}r", messages, args.concurrency, False)
                resources.delete_tables()
                best_s = bench_raw(service, f"{run}{tag}b", messages, args.concurrency, True)
                resources.delete_tables()
                results.append((scenario, len(messages), entities, archive_s, raw_s, best_s))
        finally:
            service.close()

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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return BENCH.run(bench, argv)


if __name__ == "__main__":
    sys.exit(main())
