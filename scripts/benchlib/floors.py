"""Raw floors: what each store takes directly through its SDK, with no app code.

The benchmarks compare each app path with the same work done raw, in the same
run: rows written by ``COPY`` (bench_postgres, bench_e2e), entities by
entity-group transactions grouped per partition (bench_archive, bench_e2e),
envelopes sent to and taken from the queues (bench_e2e). Inputs are prepared
before the clock starts; each function returns the seconds its writes took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

import psycopg
from azure.data.tables import TableServiceClient, UpdateMode
from azure.storage.queue import QueueClient
from psycopg import sql
from psycopg.types.json import Jsonb

from scripts.benchlib.report import log, progress
from shared.models.events import ActivityEvent
from shared.repositories.archive_entities import chunk_entities, event_entities, table_name
from shared.repositories.postgres.tables import (
    HISTORY_TABLES,
    MERGED_TABLES,
    TYPE_BY_MODEL,
    event_columns,
    merge_rows,
)

COPY_TABLES = ("event_ledger", *HISTORY_TABLES.values(), *(spec.table for spec in MERGED_TABLES))
LEDGER_COLUMNS = ("event_id", "type", "actor_id", "user_ids", "occurred_at", "received_at")
Rows = dict[str, list[Any]]
Groups = dict[tuple[str, str], list[dict[str, Any]]]


def run_jobs(jobs: Sequence[Callable[[], object]], concurrency: int, label: str) -> float:
    """Run the jobs with ``concurrency`` workers; return the elapsed seconds."""
    report = progress(label, len(jobs))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for done, future in enumerate([pool.submit(job) for job in jobs], 1):
            future.result()
            report(done)
    return time.perf_counter() - start


# --- PostgreSQL -------------------------------------------------------------------------


def copy_rows(events: Sequence[ActivityEvent], received_at: datetime) -> Rows:
    """Every row the persist path ends up with, ready for COPY."""
    rows: Rows = {table: [] for table in COPY_TABLES}
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


def copy_into(dsn: str, rows: Rows) -> float:
    """One transaction, one ``COPY ... FROM STDIN`` per table; the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.transaction(), conn.cursor() as cursor:
        for table, table_rows in rows.items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, table_columns(table))),
            )
            with cursor.copy(statement) as copy:
                for row in table_rows:
                    copy.write_row(row)
            log(f"    copy: {table} {len(table_rows)} rows")
    return time.perf_counter() - started


# --- Azure Tables -----------------------------------------------------------------------


def partition_groups(events: Sequence[ActivityEvent], prefix: str, received: datetime) -> Groups:
    """The events' entities (and references) grouped per (table, partition) over the run."""
    groups: Groups = {}
    for event in events:
        table = table_name(prefix, event.occurred_at)
        for entity in event_entities(event, received):
            groups.setdefault((table, entity["PartitionKey"]), []).append(entity)
    return groups


def write_transactions(
    service: TableServiceClient, groups: Groups, concurrency: int, lone_upserts: bool
) -> float:
    """Each group in transactions of up to 100 upserts; the seconds it took.

    With ``lone_upserts`` a group's single entity goes as a plain upsert (as the
    archive does) instead of a one-operation transaction.
    """
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
    return run_jobs(jobs, concurrency, f"raw tx{' + lone upserts' if lone_upserts else ''}")


# --- queues -----------------------------------------------------------------------------


def send_all(queues: Sequence[QueueClient], texts: Sequence[str], concurrency: int) -> float:
    """Every text to every queue (SDK ``send_message``); the seconds it took."""
    jobs = [partial(queue.send_message, text) for text in texts for queue in queues]
    return run_jobs(jobs, concurrency, "raw send")


def drain(queue: QueueClient, expected: int) -> int:
    """Receive and delete ``expected`` messages (32 per call), as a consumer would."""
    taken = 0
    while taken < expected:
        batch = list(queue.receive_messages(messages_per_page=32, max_messages=32))
        for message in batch:
            queue.delete_message(message)
        taken += len(batch)
    return taken
