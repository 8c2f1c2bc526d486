"""Load a realistic data set of N unique events straight into PostgreSQL with COPY.

    .venv/bin/python -m scripts.load_dataset [--events 10000000] [--dsn DSN] [--days 120]

``--dsn`` names the database to fill (default: ``activity_bench`` on the local
server, the 10 M data set the report benchmark reads); give a database of
your own for a trial run, e.g. ``--dsn postgresql://postgres@127.0.0.1:5432/mine``.
It is created and migrated when missing (``shared.migrate``), and its event
tables are emptied first.

The events come from the simulator's own generator, in bulk
(``scripts.eventgen.bulk``: the same world, shares and invariants as
``scripts.eventgen``'s stream, drawn as numpy columns), so ten million events
load in minutes rather than hours. Every table is filled consistently: the
history tables and ``event_ledger`` row for row, ``lesson_progress`` and
``live_class_engagement`` folded in SQL from the same events by their merge
rules (``shared.repositories.postgres.tables``: ``MergedTable``), and
``activity_rollups`` (metric ``events``, one minute buckets by arrival time)
from the ledger. Only unique events are loaded: duplicates are the persist
path's business, not the reports'. Secondary indexes are dropped during the
COPY and rebuilt afterwards (much faster than maintaining them row by row).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from tqdm import tqdm

from scripts.eventgen import Config
from scripts.eventgen.bulk import RECEIVED_AFTER, tables
from scripts.eventgen.columns import Column, Table
from shared.migrate import ensure_database, migrate
from shared.models.events import MODEL_BY_TYPE, ActivityEvent
from shared.repositories.postgres.tables import (
    HISTORY_TABLES,
    MERGED_BY_MODEL,
    Merge,
    MergedTable,
)

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/activity_bench"
CHUNK = 100_000  # rows formatted and sent at a time

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
LEDGER = "event_ledger"
LEDGER_COLUMNS = ("event_id", "type", "actor_id", "user_ids", "occurred_at", "received_at")
# COPY's text format: a backslash, tab or line break inside a value is escaped.
ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def config(events: int, days: float, seed: int, now: datetime) -> Config:
    """The simulated platform for ``events`` events: about 200 events per student."""
    return Config(
        events=events,
        students=max(50, events // 200),
        teachers=max(5, events // 5000),
        lessons=max(10, events // 5000),
        quizzes=max(5, events // 10000),
        days=days,
        seed=seed,
        now=now,
    )


def timestamps(seconds: NDArray[np.float64]) -> list[str]:
    """Epoch seconds as ISO 8601 UTC to the microsecond (``\\N`` for NaN), in numpy."""
    missing = np.isnan(seconds)
    micros = np.round(np.where(missing, 0.0, seconds) * 1e6).astype(np.int64)
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us", timezone="UTC")
    text[missing] = "\\N"
    values: list[str] = text.tolist()
    return values


def copy_text(column: Column, rows: slice) -> list[str]:
    """A column's values for COPY's text format (``\\N`` for null)."""
    values = column.values[rows]
    if column.kind == "time":
        return timestamps(values)
    if column.kind == "float":
        return ["\\N" if math.isnan(v) else repr(v) for v in values.tolist()]
    if column.kind == "int":
        return [str(v) for v in values.tolist()]
    if column.kind == "bool":
        return ["t" if v else "f" for v in values.tolist()]
    if column.kind == "array":
        return ["{" + ",".join(v) + "}" for v in values]
    present = "\x00".join(v for v in values if v is not None)
    if any(special in present for special in "\\\t\n\r"):  # rare: escape them all
        return ["\\N" if v is None else v.translate(ESCAPES) for v in values]
    return ["\\N" if v is None else v for v in values]


def source(model: type[ActivityEvent]) -> str:
    """Where a type's events are written: its history table, or (a merged type
    without one) an unlogged staging table its merged table is folded from."""
    return HISTORY_TABLES.get(model) or f"load_{MERGED_BY_MODEL[model].table}_events"


def staged() -> list[MergedTable]:
    return [spec for spec in MERGED_BY_MODEL.values() if spec.model not in HISTORY_TABLES]


def ledger(table: Table) -> dict[str, Column]:
    """The event_ledger columns of a table's events (actor first in user_ids)."""
    model = MODEL_BY_TYPE[table.type]
    actors = table.columns[model.actor_field].values
    subjects = [table.columns[name].values for name in model.subject_fields]
    users = [
        (actor, *dict.fromkeys(s[i] for s in subjects if s[i] is not None and s[i] != actor))
        for i, actor in enumerate(actors)
    ]
    occurred = table.columns[model.time_field].values
    return {
        "event_id": table.columns["event_id"],
        "type": Column("text", [table.type] * len(table)),
        "actor_id": Column("text", actors),
        "user_ids": Column("array", users),
        "occurred_at": Column("time", occurred),
        "received_at": Column("time", occurred + RECEIVED_AFTER),
    }


class Sink:
    """COPYs columns into a table, a chunk of rows at a time."""

    def __init__(self, conn: psycopg.Connection[Any], bar: tqdm[Any]) -> None:
        self.conn = conn
        self.bar = bar

    def copy(self, table: str, columns: dict[str, Column], *, count: bool) -> None:
        names = list(columns)
        total = len(next(iter(columns.values())).values)
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
        )
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for first in range(0, total, CHUNK):
                rows = slice(first, min(total, first + CHUNK))
                text = [copy_text(columns[name], rows) for name in names]
                copy.write("".join("\t".join(row) + "\n" for row in zip(*text, strict=True)))
                if count:
                    self.bar.update(rows.stop - rows.start)

    def load(self, table: Table) -> None:
        """A type's events into its history table (or the staging table) and the ledger."""
        model = MODEL_BY_TYPE[table.type]
        received = table.columns[model.time_field].values + RECEIVED_AFTER
        columns = table.columns | {"received_at": Column("time", received)}
        self.copy(source(model), columns, count=True)
        self.copy(LEDGER, ledger(table), count=False)


def fold(spec: MergedTable, source: str) -> sql.Composed:
    """``spec.table``'s rows folded from every event in ``source`` by ``spec``'s merge rules.

    The loader's one INSERT per merged table, from the rules the persist path
    folds with: MIN and MAX as aggregates, UNION as the sorted distinct
    elements, LATEST from the event with the greatest (``latest_by``,
    ``event_id``); ``received_at`` the first arrival.
    """
    key = sql.SQL(", ").join(map(sql.Identifier, spec.key))
    unions = [name for name, rule in spec.rules.items() if rule is Merge.UNION]
    latest = [name for name, rule in spec.rules.items() if rule is Merge.LATEST]
    aggregates: list[sql.Composable] = [
        sql.SQL("{}(r.{}) AS {}").format(
            sql.SQL(rule.value), sql.Identifier(name), sql.Identifier(name)
        )
        for name, rule in spec.rules.items()
        if rule in (Merge.MIN, Merge.MAX)
    ]
    aggregates += [
        sql.SQL(
            "coalesce(array_agg(DISTINCT {v} ORDER BY {v}) FILTER (WHERE {v} IS NOT NULL), "
            "'{{}}') AS {name}"
        ).format(v=sql.Identifier(f"u_{name}", "v"), name=sql.Identifier(name))
        for name in unions
    ]
    laterals = sql.SQL("").join(
        sql.SQL(" LEFT JOIN LATERAL unnest(r.{}) AS {}(v) ON true").format(
            sql.Identifier(name), sql.Identifier(f"u_{name}")
        )
        for name in unions
    )
    picked = [
        sql.SQL("{}.{}").format(
            sql.Identifier("l" if name in latest else "a"), sql.Identifier(name)
        )
        for name in spec.rules
    ]
    return sql.SQL(
        "INSERT INTO {table} ({key}, {columns}, received_at, updated_at)\n"
        "SELECT {a_key}, {picked}, a.received_at, now()\n"
        "FROM (SELECT {r_key}, {aggregates}, min(r.received_at) AS received_at\n"
        "      FROM {source} AS r{laterals} GROUP BY {r_key}) AS a\n"
        "JOIN (SELECT DISTINCT ON ({key}) {key}, {latest}\n"
        "      FROM {source} ORDER BY {key}, {latest_by} DESC, event_id DESC) AS l\n"
        "USING ({key})"
    ).format(
        table=sql.Identifier(spec.table),
        key=key,
        columns=sql.SQL(", ").join(map(sql.Identifier, spec.rules)),
        a_key=sql.SQL(", ").join(sql.Identifier("a", name) for name in spec.key),
        picked=sql.SQL(", ").join(picked),
        r_key=sql.SQL(", ").join(sql.Identifier("r", name) for name in spec.key),
        aggregates=sql.SQL(", ").join(aggregates),
        source=sql.Identifier(source),
        laterals=laterals,
        latest=sql.SQL(", ").join(map(sql.Identifier, latest)),
        latest_by=sql.Identifier(spec.latest_by),
    )


def folds() -> Iterator[sql.Composable]:
    """Every statement after the COPY: the merged tables, then the roll-ups."""
    for spec in MERGED_BY_MODEL.values():
        yield fold(spec, source(spec.model))
    for spec in staged():
        yield sql.SQL("DROP TABLE {}").format(sql.Identifier(source(spec.model)))
    yield from (sql.SQL(statement) for statement in ROLLUPS)


ROLLUPS = (
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
    platform = config(n, args.days, args.seed, datetime.now(UTC) - timedelta(minutes=10))
    print(
        f"{platform.students:,} students, {platform.teachers:,} teachers, "
        f"{platform.lessons:,} lessons, {platform.quizzes:,} quizzes over {args.days:g} days"
    )
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
        for spec in staged():
            staging = sql.Identifier(source(spec.model))
            conn.execute(
                sql.SQL(
                    "CREATE UNLOGGED TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)"
                ).format(staging, sql.Identifier(spec.table))
            )
            conn.execute(sql.SQL("TRUNCATE {}").format(staging))
        with tqdm(total=n, unit="ev", unit_scale=True, desc="COPY") as bar:
            sink = Sink(conn, bar)
            for table in tables(platform):
                bar.set_postfix_str(table.type)
                sink.load(table)
        copied = time.monotonic()
        for statement in tqdm(list(folds()), desc="merged tables + roll-ups"):
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
