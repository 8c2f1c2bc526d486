"""Benchmark the whole pipeline: first POST to the last row and the last archive entity.

Starts the local Functions host with its queue triggers (``python -m devhost
--no-timers``) in a subprocess, on its own database, Redis prefix, queues,
container and table prefix; sends N realistic events from ``eventgen`` (with
re-sent duplicates and late arrivals) in 100-event requests over loopback;
and watches, from a second thread, until

- t1: the last request has its 202 (ingest done),
- t2: ``event_ledger`` holds one row per unique event (PostgreSQL complete),
- t3: the archive queue is drained and the archive tables hold one actor
  entity per unique event (archive complete; counted once the queue is empty,
  because a full scan of the tables on Azurite slows the writers down).

Prints total seconds, events/s and the split, and the CPU it cost per unique
event: the host's (every worker process), and the stores' (PostgreSQL, Redis,
Azurite) over the same time.

Then the raw floor, in the same run on resources of its own: the same unique
events packed into the same envelopes, sent to the two queues, received and
deleted from both, their rows written by ``COPY`` and their entities by
entity-group transactions (grouped per partition over the whole run), straight
through the SDKs with no app code (scripts/benchlib/floors.py). The consumers'
three jobs run side by side once the sends are done. The ratio app / floor is
the end-to-end figure of issue 14. Everything it created is removed at the end.

``FUNCTIONS_WORKER_PROCESS_COUNT=2`` in the environment runs the host with two
worker processes (docs/development.md).

    .venv/bin/python -m scripts.bench_e2e [--events 20000] [--concurrency 8] [--no-floor]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient

from scripts.benchlib import (
    Bench,
    BenchResources,
    DevhostProcess,
    http_load,
    latency_summary,
    log,
    stores_cpu_by_store,
    tree_cpu_seconds,
)
from scripts.benchlib.floors import (
    copy_into,
    copy_rows,
    drain,
    partition_groups,
    send_all,
    write_transactions,
)
from scripts.eventgen import Config, batches, generate
from shared.models.events import ActivityEvent, event_adapter
from shared.models.messages import pack_events


@dataclass
class Watch:
    """What the watcher saw, in seconds since the first POST."""

    unique: int
    start: float
    ledger_done: float | None = None
    archive_drained: float | None = None
    archive_done: float | None = None
    realtime_drained: float | None = None
    ledger_rows: int = 0
    archived: int = 0
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def queue_length(service: QueueServiceClient, name: str) -> int:
    try:
        properties = service.get_queue_client(name).get_queue_properties()
    except ResourceNotFoundError:
        return -1  # not created yet
    return int(properties.approximate_message_count or 0)


def watch(
    resources: BenchResources, state: Watch, interval: float, ingest_done: threading.Event
) -> None:
    service = QueueServiceClient.from_connection_string(resources.storage)
    archive = resources.archive()
    try:
        with psycopg.connect(resources.dsn, autocommit=True) as conn:
            while not state.stop.is_set():
                now = time.perf_counter() - state.start
                row = conn.execute("SELECT count(*) FROM event_ledger").fetchone()
                state.ledger_rows = int(row[0]) if row else 0
                if state.ledger_done is None and state.ledger_rows >= state.unique:
                    state.ledger_done = now
                archive_queue = queue_length(service, resources.queue("archive"))
                realtime_queue = queue_length(service, resources.queue("realtime"))
                state.samples.append((now, state.ledger_rows, archive_queue, realtime_queue))
                if ingest_done.is_set() and state.realtime_drained is None and realtime_queue == 0:
                    state.realtime_drained = now
                if ingest_done.is_set() and state.archive_done is None and archive_queue == 0:
                    drained = now
                    state.archived = resources.count_archived_events(archive)
                    if state.archived >= state.unique:
                        state.archive_drained = drained
                        state.archive_done = time.perf_counter() - state.start
                if state.ledger_done is not None and state.archive_done is not None:
                    return
                if len(state.samples) % max(1, round(5 / interval)) == 0:
                    log(
                        f"  t={now:6.1f} s: ledger {state.ledger_rows}/{state.unique}, "
                        f"archive queue {archive_queue}, realtime queue {realtime_queue}"
                    )
                state.stop.wait(interval)
    finally:
        archive.close()
        service.close()


BENCH = Bench(__doc__, seed=3, events=20_000, concurrency=8)
BENCH.add("--batch", type=int, default=100, help="events per request")
BENCH.add("--duplicates", type=float, default=0.05)
BENCH.add("--shuffle", type=float, default=0.1)
BENCH.add("--timeout", type=float, default=900.0, help="give up after (s)")
BENCH.add("--interval", type=float, default=0.25, help="watcher poll (s)")
BENCH.add("--no-floor", action="store_true", help="skip the raw floor")


def timed(job: Callable[..., object], *args: Any) -> float:
    started = time.perf_counter()
    job(*args)
    return time.perf_counter() - started


def raw_floor(events: list[ActivityEvent], batch: int, concurrency: int) -> tuple[float, str]:
    """Seconds the raw floor took for ``events``, and its split."""
    resources = BenchResources("e2eraw", uses=frozenset({"database", "storage"}))
    with resources:
        received = datetime.now(UTC)
        texts = [
            base64.b64encode(payload).decode()
            for start in range(0, len(events), batch)
            for payload, _ in pack_events(events[start : start + batch], received)
        ]
        rows = copy_rows(events, received)
        groups = partition_groups(events, resources.table_prefix, received)
        queues = [
            QueueClient.from_connection_string(resources.storage, name)
            for name in resources.ingest_queues
        ]
        tables = TableServiceClient.from_connection_string(resources.storage)
        try:
            for queue in queues:
                queue.create_queue()
            log(f"raw floor: {len(texts)} envelopes x {len(queues)} queues, {len(events)} events")
            started = time.perf_counter()
            sending = send_all(queues, texts, concurrency)
            with ThreadPoolExecutor(max_workers=len(queues) + 2) as pool:
                drains = [pool.submit(timed, drain, queue, len(texts)) for queue in queues]
                copying = pool.submit(copy_into, resources.dsn, rows)
                writing = pool.submit(write_transactions, tables, groups, concurrency, True)
                split = (
                    f"send {sending:.1f} s, then side by side: receive+delete "
                    f"{max(f.result() for f in drains):.1f} s, COPY {copying.result():.1f} s, "
                    f"transactions {writing.result():.1f} s"
                )
            total = time.perf_counter() - started
        finally:
            for queue in queues:
                queue.close()
            tables.close()
            resources.delete_tables()
    return total, split


def bench(args: argparse.Namespace) -> int:
    config = Config(
        events=args.events,
        batch=args.batch,
        duplicates=args.duplicates,
        shuffle=args.shuffle,
        seed=args.seed,
    )
    log(f"generating {args.events} events (+{config.duplicate_count} re-sent) ...")
    bodies: list[tuple[bytes, int]] = []
    unique_ids: set[str] = set()
    for batch in batches(generate(config), args.batch):
        unique_ids.update(str(event["event_id"]) for event in batch)
        bodies.append((json.dumps({"events": batch}).encode(), len(batch)))
    sent = sum(count for _, count in bodies)
    unique = len(unique_ids)

    resources = BenchResources("e2e")
    with resources, DevhostProcess(resources, queues=True, timers=False) as host:
        url = f"{host.base_url}/api/v1/events"
        ingest_done = threading.Event()
        host_cpu, stores_before = tree_cpu_seconds(host.pid), Counter(stores_cpu_by_store())
        state = Watch(unique=unique, start=time.perf_counter())
        watcher = threading.Thread(
            target=watch, args=(resources, state, args.interval, ingest_done), daemon=True
        )
        watcher.start()
        try:
            result = http_load(
                url, bodies, concurrency=args.concurrency, max_seconds=args.timeout, label="POST"
            )
            t1 = time.perf_counter() - state.start
            ingest_done.set()
            log(f"ingest done at {t1:.1f} s; waiting for PostgreSQL and the archive")
            watcher.join(timeout=max(1.0, args.timeout - t1))
        finally:
            state.stop.set()
            watcher.join(timeout=30)
        host_cpu = tree_cpu_seconds(host.pid) - host_cpu
        by_store = Counter(stores_cpu_by_store())
        by_store.subtract(stores_before)
        stores_cpu = by_store.total()
        service = QueueServiceClient.from_connection_string(resources.storage)
        try:
            poison = {name: queue_length(service, f"{name}-poison") for name in resources.queues}
        finally:
            service.close()

    print()
    print(
        f"{sent} events sent ({unique} unique, {sent - unique} re-sent duplicates) in "
        f"{len(bodies)} requests of {args.batch}, {args.concurrency} concurrent; "
        f"statuses {result.statuses}, errors {result.errors}"
    )
    print(f"request latency: {latency_summary(result.latencies)}")
    print(f"poison messages: {json.dumps({k: max(v, 0) for k, v in poison.items()})}")
    print(f"t1 ingest done (last 202):          {t1:7.1f} s  {unique / t1:7,.0f} unique events/s")
    if state.ledger_done is None:
        print(f"t2 PostgreSQL INCOMPLETE: {state.ledger_rows}/{unique} ledger rows")
    else:
        t2 = state.ledger_done
        print(f"t2 PostgreSQL complete (ledger):    {t2:7.1f} s  {unique / t2:7,.0f} events/s")
    if state.archive_done is None:
        print(f"t3 archive INCOMPLETE: {state.archived}/{unique} actor entities")
    else:
        assert state.archive_drained is not None
        t3 = state.archive_drained
        print(
            f"t3 archive complete (queue empty):  {t3:7.1f} s  {unique / t3:7,.0f} events/s "
            f"({state.archived} actor entities counted by {state.archive_done:.1f} s)"
        )
    if state.realtime_drained is not None:
        print(f"   realtime queue drained:          {state.realtime_drained:7.1f} s")
    if state.ledger_done is None or state.archive_done is None:
        return 1
    total = max(state.ledger_done, state.archive_drained or state.archive_done)
    print(f"total {total:.1f} s: {unique / total:,.0f} unique events/s end to end")
    stores = ", ".join(f"{name} {cpu / unique * 1e6:,.0f} us" for name, cpu in by_store.items())
    print(
        f"CPU per unique event: host {host_cpu / unique * 1e6:,.0f} us "
        f"({host_cpu:.1f} s, {host_cpu / total:.2f} cores busy on average), "
        f"stores {stores_cpu / unique * 1e6:,.0f} us ({stores_cpu:.1f} s: {stores})"
    )
    if args.no_floor:
        return 0
    models = unique_models(bodies)
    floor, split = raw_floor(models, args.batch, args.concurrency)
    print(f"raw floor: {floor:.1f} s, {unique / floor:,.0f} events/s ({split})")
    print(f"end to end / raw floor: {floor / total:.2f}")
    return 0


def unique_models(bodies: list[tuple[bytes, int]]) -> list[ActivityEvent]:
    """The unique events of the run, in the order they were first sent."""
    seen: dict[str, ActivityEvent] = {}
    for body, _ in bodies:
        for raw in json.loads(body)["events"]:
            seen.setdefault(str(raw["event_id"]), event_adapter.validate_python(raw))
    return list(seen.values())


def main(argv: Sequence[str] | None = None) -> int:
    return BENCH.run(bench, argv)


if __name__ == "__main__":
    sys.exit(main())
