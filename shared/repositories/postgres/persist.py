"""The persist path: one queue message in one transaction and one statement.

``event_ledger`` is the single dedupe point: the statement inserts the batch
there with ``ON CONFLICT (event_id) DO NOTHING`` and every other table receives
only the events that insert returned. The history tables take each new event
once; the merged tables (``tables.py``) are upserts by their merge rules. The
SQL is composed with ``psycopg.sql`` from the table specs, once per process.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import SerializeAsAny, TypeAdapter
from pydantic_core import to_json

from shared import telemetry
from shared.models.events import MODEL_BY_TYPE, ActivityEvent
from shared.repositories.postgres.pool import PooledRepository, Row, ident_list
from shared.repositories.postgres.tables import (
    HISTORY_TABLES,
    MERGED_BY_MODEL,
    NATURAL_KEYS,
    TYPE_BY_MODEL,
    Merge,
    MergedTable,
    event_columns,
)

log = logging.getLogger(__name__)


def unique_events(events: Iterable[ActivityEvent]) -> list[ActivityEvent]:
    """The events with their ids set, each event_id once (the first occurrence wins)."""
    unique: dict[uuid.UUID | None, ActivityEvent] = {}
    for event in events:
        event = event.with_event_id()
        unique.setdefault(event.event_id, event)
    return list(unique.values())


def ledger_row(event: ActivityEvent) -> Row:
    """The event_ledger entry of an event."""
    return {
        "event_id": event.event_id,
        "type": TYPE_BY_MODEL[type(event)],
        "actor_id": event.actor_id,
        "user_ids": event.user_ids,
        "occurred_at": event.occurred_at,
        "content_digest": event.content_digest,
    }


# The events are serialised by pydantic's own (Rust) JSON encoder, each by its
# runtime model: ids and times become strings PostgreSQL parses exactly, floats
# are written in their shortest exact form, so they round-trip.
_events_json: Callable[[Any], bytes] = TypeAdapter(list[SerializeAsAny[ActivityEvent]]).dump_json


def persist_params(
    events: Sequence[ActivityEvent], received_at: datetime, not_before: datetime | None = None
) -> dict[str, Any]:
    """The parameters of the persist statement: the ledger and the events of each type."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    by_type: dict[str, list[ActivityEvent]] = {name: [] for name in MODEL_BY_TYPE}
    ledger: list[Row] = []
    for event in unique_events(events):
        by_type[TYPE_BY_MODEL[type(event)]].append(event)
        ledger.append(ledger_row(event))
    params: dict[str, Any] = {
        "received_at": received_at,
        "not_before": not_before,
        "event_ledger": Jsonb(ledger, dumps=to_json),
    }
    params.update({name: Jsonb(typed, dumps=_events_json) for name, typed in by_type.items()})
    return params


# --- the persist statement --------------------------------------------------------------------


def _rows_cte(model: type[ActivityEvent]) -> sql.Composed:
    """The batch's new events of one type, as rows typed like their table."""
    name = TYPE_BY_MODEL[model]
    row_type = HISTORY_TABLES.get(model) or MERGED_BY_MODEL[model].table
    return sql.SQL(
        "{cte} AS MATERIALIZED (\n"
        "  SELECT {columns}, r.ordinality\n"
        "  FROM jsonb_populate_recordset(NULL::{row_type}, {param}) WITH ORDINALITY AS r\n"
        "  WHERE r.event_id IN (SELECT event_id FROM new_events)\n"
        ")"
    ).format(
        cte=sql.Identifier(f"{name}_rows"),
        columns=ident_list(event_columns(model), "r"),
        row_type=sql.Identifier(row_type),
        param=sql.Placeholder(name),
    )


def _history_insert_cte(model: type[ActivityEvent], table: str) -> sql.Composed:
    columns = event_columns(model)
    natural_key = NATURAL_KEYS.get(model)
    conflict: sql.Composable = sql.SQL("")
    if natural_key:
        conflict = sql.SQL("\n  ON CONFLICT ({}) DO NOTHING RETURNING event_id").format(
            ident_list(natural_key)
        )
    return sql.SQL(
        "{cte} AS (\n"
        "  INSERT INTO {table} ({columns}, received_at)\n"
        "  SELECT {columns}, {received_at} FROM {rows} ORDER BY ordinality{conflict}\n"
        ")"
    ).format(
        cte=sql.Identifier(f"{table}_insert"),
        table=sql.Identifier(table),
        columns=ident_list(columns),
        received_at=sql.Placeholder("received_at"),
        rows=sql.Identifier(f"{TYPE_BY_MODEL[model]}_rows"),
        conflict=conflict,
    )


def _aggregate(spec: MergedTable, name: str, rule: Merge) -> sql.Composable:
    """Folds the batch's rows of one key (several events may share it)."""
    column = sql.Identifier("r", name)
    if rule is Merge.MIN:
        return sql.SQL("min({})").format(column)
    if rule is Merge.MAX:
        return sql.SQL("max({})").format(column)
    if rule is Merge.UNION:
        element = sql.Identifier(f"u_{name}", "v")
        return sql.SQL(
            "coalesce(array_agg(DISTINCT {e} ORDER BY {e}) FILTER (WHERE {e} IS NOT NULL), '{{}}')"
        ).format(e=element)
    return sql.SQL("(array_agg({} ORDER BY {} DESC, {} DESC))[1]").format(
        column, sql.Identifier("r", spec.latest_by), sql.Identifier("r", "event_id")
    )


def _combine(spec: MergedTable, name: str, rule: Merge) -> sql.Composable:
    """Combines the stored row (t) with the batch's folded row (excluded)."""
    stored, incoming = sql.Identifier("t", name), sql.Identifier("excluded", name)
    if rule is Merge.MIN:
        return sql.SQL("LEAST({}, {})").format(stored, incoming)
    if rule is Merge.MAX:
        return sql.SQL("GREATEST({}, {})").format(stored, incoming)
    if rule is Merge.UNION:
        return sql.SQL(
            "ARRAY(SELECT DISTINCT u.v FROM unnest({} || {}) AS u(v) ORDER BY 1)"
        ).format(stored, incoming)
    order = (spec.latest_by, "event_id")
    return sql.SQL("CASE WHEN ({}) > ({}) THEN {} ELSE {} END").format(
        ident_list(order, "excluded"), ident_list(order, "t"), incoming, stored
    )


def _merge_cte(spec: MergedTable) -> sql.Composed:
    unions = [name for name, rule in spec.rules.items() if rule is Merge.UNION]
    # Unnesting multiplies a key's rows; min, max, distinct union and the
    # first element of an ordered array_agg do not mind duplicates.
    laterals = sql.SQL("").join(
        sql.SQL(" LEFT JOIN LATERAL unnest({}) AS {}(v) ON true").format(
            sql.Identifier("r", name), sql.Identifier(f"u_{name}")
        )
        for name in unions
    )
    folded = sql.SQL(", ").join(
        [sql.Identifier("r", name) for name in spec.key]
        + [_aggregate(spec, name, rule) for name, rule in spec.rules.items()]
    )
    updates = sql.SQL(",\n    ").join(
        [
            sql.SQL("{} = {}").format(sql.Identifier(name), _combine(spec, name, rule))
            for name, rule in spec.rules.items()
        ]
        + [sql.SQL("received_at = LEAST(t.received_at, excluded.received_at)")]
        + [sql.SQL("updated_at = now()")]
    )
    key = ident_list(spec.key, "r")
    return sql.SQL(
        "{cte} AS (\n"
        "  INSERT INTO {table} AS t ({columns}, received_at)\n"
        "  SELECT {folded}, {received_at}\n"
        "  FROM {rows} AS r{laterals}\n"
        # Keys in a fixed order: concurrent messages lock rows in the same order.
        "  GROUP BY {key} ORDER BY {key}\n"
        "  ON CONFLICT ({conflict}) DO UPDATE SET\n    {updates}\n"
        ")"
    ).format(
        cte=sql.Identifier(f"{spec.table}_merge"),
        table=sql.Identifier(spec.table),
        columns=ident_list(spec.columns),
        folded=folded,
        received_at=sql.Placeholder("received_at"),
        rows=sql.Identifier(f"{TYPE_BY_MODEL[spec.model]}_rows"),
        laterals=laterals,
        key=key,
        conflict=ident_list(spec.key),
        updates=updates,
    )


def _ledger_cte() -> sql.Composed:
    """The batch's new events: inserted into the ledger, those it did not hold before."""
    return sql.SQL(
        "new_events AS (\n"
        "  INSERT INTO event_ledger (event_id, type, actor_id, user_ids, occurred_at,"
        " received_at, content_digest)\n"
        "  SELECT r.event_id, r.type, r.actor_id, r.user_ids, r.occurred_at, {received_at},"
        " r.content_digest\n"
        "  FROM jsonb_populate_recordset(NULL::event_ledger, {ledger}) AS r\n"
        # Erased users' events never come back (SPEC 9); events older than the
        # retention window are not stored again after retention deleted them.
        "  WHERE NOT EXISTS (SELECT 1 FROM erased_users e WHERE e.user_id = ANY(r.user_ids))\n"
        "    AND r.occurred_at >= coalesce({not_before}::timestamptz, '-infinity')\n"
        # Sorted so concurrent batches sharing events wait instead of deadlocking.
        "  ORDER BY r.event_id\n"
        "  ON CONFLICT (event_id) DO NOTHING\n"
        "  RETURNING event_id\n"
        ")"
    ).format(
        received_at=sql.Placeholder("received_at"),
        ledger=sql.Placeholder("event_ledger"),
        not_before=sql.Placeholder("not_before"),
    )


def _conflicts_cte() -> sql.Composed:
    """A second version of a stored event (SPEC 13), recorded.

    Kept out by the ledger's ON CONFLICT, recorded here. Only the events the
    ledger did not take are looked up, and the statement's snapshot holds the
    rows stored before it.
    """
    return sql.SQL(
        "conflicts AS (\n"
        "  INSERT INTO event_conflicts (event_id, sink, first_digest, other_digest)\n"
        "  SELECT r.event_id, 'postgres', l.content_digest, r.content_digest\n"
        "  FROM jsonb_populate_recordset(NULL::event_ledger, {ledger}) AS r\n"
        "  JOIN event_ledger AS l ON l.event_id = r.event_id\n"
        "  WHERE r.event_id NOT IN (SELECT event_id FROM new_events)\n"
        "    AND l.content_digest <> r.content_digest\n"
        "  ON CONFLICT DO NOTHING\n"
        "  RETURNING event_id\n"
        ")"
    ).format(ledger=sql.Placeholder("event_ledger"))


def build_persist_statement() -> sql.Composed:
    """One statement for a whole batch: ledger, history tables, merges.

    Its result is (number of new events, event_ids dropped as natural-key
    duplicates, event_ids met again with other content). The text is the same
    for every batch (an empty type is an empty array), so psycopg prepares it
    once per connection.
    """
    ctes: list[sql.Composable] = [_ledger_cte(), _conflicts_cte()]
    for model in MODEL_BY_TYPE.values():
        ctes.append(_rows_cte(model))
        if model in HISTORY_TABLES:
            ctes.append(_history_insert_cte(model, HISTORY_TABLES[model]))
        if model in MERGED_BY_MODEL:
            ctes.append(_merge_cte(MERGED_BY_MODEL[model]))
    dropped = sql.SQL(" UNION ALL ").join(
        sql.SQL("(SELECT event_id FROM {} EXCEPT SELECT event_id FROM {})").format(
            sql.Identifier(f"{TYPE_BY_MODEL[model]}_rows"),
            sql.Identifier(f"{HISTORY_TABLES[model]}_insert"),
        )
        for model in NATURAL_KEYS
    )
    return sql.SQL(
        "WITH {ctes}\nSELECT (SELECT count(*) FROM new_events) AS new_events, "
        "ARRAY({dropped}) AS dropped, ARRAY(SELECT event_id FROM conflicts) AS conflicts"
    ).format(ctes=sql.SQL(",\n").join(ctes), dropped=dropped)


# Rendered once: composing the statement costs more than some batches take to run.
_PERSIST: bytes = build_persist_statement().as_bytes(None)


class PersistWrites(PooledRepository):
    """The persist path's writes: a queue message's events, other sinks' conflicts."""

    def persist_events(
        self,
        events: Sequence[ActivityEvent],
        received_at: datetime,
        *,
        not_before: datetime | None = None,
    ) -> int:
        """Store a batch (one queue message) in one transaction; return how many were new.

        Events naming an erased user, and events older than ``not_before``
        (the retention window), are dropped. Idempotent on event_id; raises on
        any database error, having written nothing.
        """
        if not events:
            return 0
        params = persist_params(events, received_at, not_before)
        with self._pool.connection() as conn, conn.transaction():
            # An erasure inserts its tombstone first (ROW EXCLUSIVE): it waits for
            # this transaction, or this one waits for it and then, in the next
            # statement's snapshot, sees the tombstone. Persists do not block
            # each other (SHARE does not conflict with SHARE).
            conn.execute("LOCK TABLE erased_users IN SHARE MODE")
            result = conn.execute(_PERSIST, params).fetchone()
            if result is None:  # pragma: no cover - a SELECT without FROM returns a row
                raise RuntimeError("the persist statement returned no row")
            new_events, dropped, conflicts = int(result[0]), list(result[1]), list(result[2])
            if dropped:
                conn.execute("DELETE FROM event_ledger WHERE event_id = ANY(%s)", (dropped,))
        if conflicts:
            telemetry.event_conflicts.add(len(conflicts), {"sink": "postgres"})
            log.warning(
                "kept the first version of %d event(s) met again with other content: %s",
                len(conflicts),
                ", ".join(map(str, conflicts[:20])),
            )
        return new_events - len(dropped)

    def record_conflicts(
        self, sink: str, conflicts: Sequence[tuple[uuid.UUID | str, str, str]]
    ) -> None:
        """Record second versions another sink met: (event_id, first digest, other digest)."""
        with self._pool.connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO event_conflicts (event_id, sink, first_digest, other_digest) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(event_id, sink, first, other) for event_id, first, other in conflicts],
            )
