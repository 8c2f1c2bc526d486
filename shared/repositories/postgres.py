"""PostgreSQL repository: persisting activity events and reading them back.

The persist path writes one queue message in one transaction and one
statement. ``event_ledger`` is the single dedupe point: the statement inserts
the batch there with ``ON CONFLICT (event_id) DO NOTHING`` and every other
table receives only the events that insert returned. The two merged tables
(``lesson_progress``, ``live_class_engagement``) are upserts whose rules
(min, max, union, latest) are associative, commutative and idempotent, so the
state does not depend on arrival order or redeliveries. The table and column
names come from the pydantic models; the SQL is composed with ``psycopg.sql``.
"""

from __future__ import annotations

import enum
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType, TracebackType
from typing import Any, LiteralString, Self, TypeVar, cast

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from pydantic import SerializeAsAny, TypeAdapter
from pydantic_core import to_json

from shared import telemetry
from shared.models.events import (
    MODEL_BY_TYPE,
    ActivityEvent,
    ContentActivity,
    Feedback,
    ForumActivity,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
)
from shared.models.rollups import RollupRow
from shared.settings import get_settings

Row = dict[str, Any]
log = logging.getLogger(__name__)

TYPE_BY_MODEL: Mapping[type[ActivityEvent], str] = MappingProxyType(
    {model: name for name, model in MODEL_BY_TYPE.items()}
)


def event_columns(model: type[ActivityEvent]) -> tuple[str, ...]:
    """The model's fields as table columns (all but the ``type`` discriminator)."""
    return tuple(name for name in model.model_fields if name != "type")


# One row per unique event, for every type that keeps its events.
HISTORY_TABLES: Mapping[type[ActivityEvent], str] = MappingProxyType(
    {
        LessonProgress: "lesson_progress_events",
        QuizAttempt: "quiz_attempts",
        ForumActivity: "forum_activity",
        ContentActivity: "content_activity",
        Feedback: "feedback",
    }
)

# History tables with a natural key besides event_id. A new event whose key is
# already stored is a duplicate (a resend under a fresh event_id): the first
# stored event wins and the duplicate is dropped from the ledger as well.
NATURAL_KEYS: Mapping[type[ActivityEvent], tuple[str, ...]] = MappingProxyType(
    {QuizAttempt: ("attempt_id",)}
)


class Merge(enum.Enum):
    """How a merged column combines two values for the same key."""

    MIN = "min"  # the smallest non-null value (LEAST ignores nulls)
    MAX = "max"  # the largest non-null value (GREATEST ignores nulls)
    UNION = "union"  # distinct union of arrays, sorted
    LATEST = "latest"  # from the event with the greatest (latest_by, event_id)


@dataclass(frozen=True)
class MergedTable:
    """A table holding one merged row per key, folded from every event."""

    model: type[ActivityEvent]
    table: str
    key: tuple[str, ...]
    rules: Mapping[str, Merge]
    # Orders the events for LATEST columns; event_id breaks ties so the
    # order is total and the winner does not depend on arrival order.
    latest_by: str

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + tuple(self.rules)


LESSON_PROGRESS = MergedTable(
    model=LessonProgress,
    table="lesson_progress",
    key=("student_id", "lesson_id"),
    rules=MappingProxyType(
        {
            "started_at": Merge.MIN,
            "completed_at": Merge.MIN,
            "progress_percent": Merge.MAX,
            "video_watch_time": Merge.MAX,
            "sections_read": Merge.UNION,
            "last_accessed_at": Merge.MAX,
            "event_id": Merge.LATEST,
        }
    ),
    latest_by="last_accessed_at",
)

LIVE_CLASS_ENGAGEMENT = MergedTable(
    model=LiveClassEngagement,
    table="live_class_engagement",
    key=("session_id", "teacher_id"),
    rules=MappingProxyType(
        {
            "class_id": Merge.LATEST,
            "joined_at": Merge.MIN,
            "left_at": Merge.MAX,
            "duration_seconds": Merge.MAX,
            "polls_launched": Merge.UNION,
            "messages_sent": Merge.MAX,
            "event_id": Merge.LATEST,
        }
    ),
    # duration_seconds only grows during a session: the longest is the latest snapshot.
    latest_by="duration_seconds",
)

MERGED_TABLES: tuple[MergedTable, ...] = (LESSON_PROGRESS, LIVE_CLASS_ENGAGEMENT)
_MERGED_BY_MODEL: Mapping[type[ActivityEvent], MergedTable] = MappingProxyType(
    {spec.model: spec for spec in MERGED_TABLES}
)


# --- pure helpers ---------------------------------------------------------------------------


def _pick(rule: Merge, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b) if rule is Merge.MIN else max(a, b)


def merge_rows(spec: MergedTable, rows: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], Row]:
    """Fold event rows into one row per key by ``spec``'s rules, as the database does."""
    merged: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[name] for name in spec.key)
        current = merged.get(key)
        if current is None:
            merged[key] = {
                name: sorted(set(row[name])) if spec.rules.get(name) is Merge.UNION else row[name]
                for name in spec.columns
            }
            continue
        newer = (row[spec.latest_by], row["event_id"]) > (
            current[spec.latest_by],
            current["event_id"],
        )
        combined = dict(current)
        for name, rule in spec.rules.items():
            if rule is Merge.UNION:
                combined[name] = sorted(set(current[name]) | set(row[name]))
            elif rule is Merge.LATEST:
                combined[name] = row[name] if newer else current[name]
            else:
                combined[name] = _pick(rule, current[name], row[name])
        merged[key] = combined
    return merged


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


def _ident_list(names: Iterable[str], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)


def _rows_cte(model: type[ActivityEvent]) -> sql.Composed:
    """The batch's new events of one type, as rows typed like their table."""
    name = TYPE_BY_MODEL[model]
    row_type = HISTORY_TABLES.get(model) or _MERGED_BY_MODEL[model].table
    return sql.SQL(
        "{cte} AS MATERIALIZED (\n"
        "  SELECT {columns}, r.ordinality\n"
        "  FROM jsonb_populate_recordset(NULL::{row_type}, {param}) WITH ORDINALITY AS r\n"
        "  WHERE r.event_id IN (SELECT event_id FROM new_events)\n"
        ")"
    ).format(
        cte=sql.Identifier(f"{name}_rows"),
        columns=_ident_list(event_columns(model), "r"),
        row_type=sql.Identifier(row_type),
        param=sql.Placeholder(name),
    )


def _history_insert_cte(model: type[ActivityEvent], table: str) -> sql.Composed:
    columns = event_columns(model)
    natural_key = NATURAL_KEYS.get(model)
    conflict: sql.Composable = sql.SQL("")
    if natural_key:
        conflict = sql.SQL("\n  ON CONFLICT ({}) DO NOTHING RETURNING event_id").format(
            _ident_list(natural_key)
        )
    return sql.SQL(
        "{cte} AS (\n"
        "  INSERT INTO {table} ({columns}, received_at)\n"
        "  SELECT {columns}, {received_at} FROM {rows} ORDER BY ordinality{conflict}\n"
        ")"
    ).format(
        cte=sql.Identifier(f"{table}_insert"),
        table=sql.Identifier(table),
        columns=_ident_list(columns),
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
        _ident_list(order, "excluded"), _ident_list(order, "t"), incoming, stored
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
    key = _ident_list(spec.key, "r")
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
        columns=_ident_list(spec.columns),
        folded=folded,
        received_at=sql.Placeholder("received_at"),
        rows=sql.Identifier(f"{TYPE_BY_MODEL[spec.model]}_rows"),
        laterals=laterals,
        key=key,
        conflict=_ident_list(spec.key),
        updates=updates,
    )


def build_persist_statement() -> sql.Composed:
    """One statement for a whole batch: ledger, history tables, merges.

    Its result is (number of new events, event_ids dropped as natural-key
    duplicates, event_ids met again with other content). The text is the same
    for every batch (an empty type is an empty array), so psycopg prepares it
    once per connection.
    """
    ctes: list[sql.Composable] = [
        sql.SQL(
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
    ]
    # A second version of a stored event (SPEC 13): kept out by the ledger's
    # ON CONFLICT above, recorded here. Only the events the ledger did not take
    # are looked up, and the statement's snapshot holds the rows stored before it.
    ctes.append(
        sql.SQL(
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
    )
    for model in MODEL_BY_TYPE.values():
        ctes.append(_rows_cte(model))
        if model in HISTORY_TABLES:
            ctes.append(_history_insert_cte(model, HISTORY_TABLES[model]))
        if model in _MERGED_BY_MODEL:
            ctes.append(_merge_cte(_MERGED_BY_MODEL[model]))
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


# --- privacy -----------------------------------------------------------------------------------

# Columns that name a user in some role; every table holding one is erased and
# exported by it (plus event_ledger.user_ids, every user an event names).
USER_ROLE_COLUMNS = ("student_id", "user_id", "teacher_id", "actor_id", "subject_id")

# Retention: partitioned history tables drop whole months; these delete rows by event time.
PARTITIONED_HISTORY = ("lesson_progress_events", "forum_activity")
RETENTION_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "event_ledger": "occurred_at",
        "quiz_attempts": "submitted_at",
        "content_activity": "timestamp",
        "feedback": "created_at",
        "event_conflicts": "seen_at",
    }
)
# Summaries of the partitioned history (sql/011, sql/012), keyed by UTC day:
# retention deletes the days before the first month it keeps, as it drops
# those months of history.
DAILY_SUMMARIES = (
    "lesson_daily_progress",
    "forum_contributions",
    "forum_post_authors",
    "forum_waiting_likes",
)


def _match_user(head: LiteralString, table: str, column: str) -> sql.Composed:
    """``head`` (with a ``{table}`` field) restricted to rows naming the user (one parameter)."""
    condition = "{column} @> ARRAY[%s]::uuid[]" if column == "user_ids" else "{column} = %s"
    return sql.SQL(head + " WHERE " + condition).format(
        table=sql.Identifier(table), column=sql.Identifier(column)
    )


# --- the repository -----------------------------------------------------------------------------


class PostgresRepository:
    """The PostgreSQL store, over a connection pool."""

    # Session settings for this repository's connections (libpq ``options``).
    SESSION_OPTIONS: str | None = None

    def __init__(
        self, dsn: str, *, min_size: int = 1, max_size: int = 5, timeout: float = 10.0
    ) -> None:
        # The pool connects in the background: a host starting while the
        # database is down still starts, and calls fail (and retry) until it is up.
        self._pool: ConnectionPool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True}
            | ({"options": self.SESSION_OPTIONS} if self.SESSION_OPTIONS else {}),
            check=ConnectionPool.check_connection,
            name="postgres",
            open=True,
        )

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def ping(self, timeout: float = 5.0) -> None:
        """Raise unless the database answers within ``timeout`` seconds."""
        with self._pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

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

    # --- reads ---------------------------------------------------------------------------------

    def _all(self, query: LiteralString, params: Sequence[Any] | Mapping[str, Any]) -> list[Row]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def lesson_progress_for_student(self, student_id: uuid.UUID) -> list[Row]:
        """The student's merged progress in every lesson, most recently accessed first."""
        return self._all(
            "SELECT * FROM lesson_progress WHERE student_id = %s "
            "ORDER BY last_accessed_at DESC, lesson_id",
            (student_id,),
        )

    def lesson_progress_for_lesson(self, lesson_id: uuid.UUID, limit: int | None) -> list[Row]:
        """Every student's merged progress in a lesson (``limit``: the most recently active)."""
        return self._all(
            "SELECT * FROM lesson_progress WHERE lesson_id = %s "
            "ORDER BY last_accessed_at DESC, student_id LIMIT %s",
            (lesson_id, limit),
        )

    def live_session(self, session_id: uuid.UUID) -> list[Row]:
        """Every teacher's merged engagement in a live session, in joining order."""
        return self._all(
            "SELECT * FROM live_class_engagement WHERE session_id = %s "
            "ORDER BY joined_at, teacher_id",
            (session_id,),
        )

    def quiz_attempt(self, attempt_id: uuid.UUID) -> Row | None:
        """The stored attempt, or None."""
        rows = self._all("SELECT * FROM quiz_attempts WHERE attempt_id = %s", (attempt_id,))
        return rows[0] if rows else None

    def ledger_entry(self, event_id: uuid.UUID) -> Row | None:
        """The event_ledger row of a stored event, or None."""
        rows = self._all("SELECT * FROM event_ledger WHERE event_id = %s", (event_id,))
        return rows[0] if rows else None

    def recent_activity(self, user_id: uuid.UUID, limit: int = 20) -> list[Row]:
        """The newest ledger entries of events naming the user in any role."""
        return self._all(
            "SELECT * FROM event_ledger WHERE user_ids @> ARRAY[%s]::uuid[] "
            "ORDER BY occurred_at DESC, event_id DESC LIMIT %s",
            (user_id, limit),
        )

    def quiz_attempts_for_quiz(self, quiz_id: uuid.UUID) -> list[Row]:
        """Every stored attempt at a quiz (the leaderboard's source)."""
        return self._all(
            "SELECT quiz_id, student_id, attempt_id, score, submitted_at FROM quiz_attempts "
            "WHERE quiz_id = %s",
            (quiz_id,),
        )

    def notifications_for_user(self, user_id: uuid.UUID, limit: int) -> list[Row]:
        """Replies to and likes of the user's posts by other users, newest first."""
        return self._all(
            """
            WITH mine AS (
                SELECT post_id FROM forum_activity
                WHERE user_id = %(user)s AND action_type IN ('post', 'reply')
            )
            SELECT f.action_type AS type,
                   CASE WHEN f.action_type = 'reply' THEN f.parent_post_id ELSE f.post_id END
                       AS post_id,
                   f.thread_id, f.user_id AS actor_id, f.created_at, f.event_id
            FROM forum_activity f
            WHERE f.user_id <> %(user)s
              AND ((f.action_type = 'reply' AND f.parent_post_id IN (SELECT post_id FROM mine))
                OR (f.action_type = 'like' AND f.post_id IN (SELECT post_id FROM mine)))
            ORDER BY f.created_at DESC, f.event_id DESC
            LIMIT %(limit)s
            """,
            {"user": user_id, "limit": limit},
        )

    # --- privacy: erasure, export, access log, retention (SPEC 9) -------------------------

    def user_columns(self) -> list[tuple[str, str]]:
        """Every (table, column) that names a user: a role column or ``user_ids``.

        Found in the catalog, so tables added later (reports, caches) are erased
        and exported too without a change here. The tombstone table is left out.
        """
        return [
            (row["table_name"], row["column_name"])
            for row in self._all(
                """
                SELECT c.relname AS table_name, a.attname AS column_name
                FROM pg_attribute AS a
                JOIN pg_class AS c ON c.oid = a.attrelid
                JOIN pg_namespace AS n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema()
                  AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                  AND a.attnum > 0 AND NOT a.attisdropped
                  AND c.relname <> 'erased_users'
                  AND ((a.attname = ANY(%(roles)s) AND a.atttypid = 'uuid'::regtype)
                    OR (a.attname = 'user_ids' AND a.atttypid = 'uuid[]'::regtype))
                ORDER BY c.relname, a.attname
                """,
                {"roles": list(USER_ROLE_COLUMNS)},
            )
        ]

    def erase_user(self, user_id: uuid.UUID, erased_by: str) -> tuple[int, datetime]:
        """Tombstone the user and delete every row naming them; (rows deleted, erased_at).

        One transaction: the tombstone is inserted first, so concurrent persists
        either finish before it or see it. Repeating it deletes nothing new and
        keeps the first ``erased_at``.
        """
        columns = self.user_columns()
        with self._pool.connection() as conn, conn.transaction():
            stamp = conn.execute(
                "INSERT INTO erased_users (user_id, erased_by) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id "
                "RETURNING erased_at",
                (user_id, erased_by),
            ).fetchone()
            assert stamp is not None  # INSERT ... RETURNING always returns the row
            # The record of earlier erasures stays: it is the proof they ran.
            deleted = conn.execute(
                "DELETE FROM access_log WHERE subject_id = %s AND action <> 'erase'", (user_id,)
            ).rowcount
            for table, column in columns:
                if table == "access_log":
                    continue
                deleted += conn.execute(
                    _match_user("DELETE FROM {table}", table, column), (user_id,)
                ).rowcount
        return deleted, stamp[0]

    def erased_user_ids(self) -> list[uuid.UUID]:
        """Every tombstone (to reload the Redis mirror)."""
        return [row["user_id"] for row in self._all("SELECT user_id FROM erased_users", ())]

    def erased_among(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these users are erased."""
        rows = self._all(
            "SELECT user_id FROM erased_users WHERE user_id = ANY(%s)", (list(set(user_ids)),)
        )
        return {row["user_id"] for row in rows}

    def export_rows(
        self, table: str, column: str, user_id: uuid.UUID, offset: int, limit: int
    ) -> list[Row]:
        """One page of a table's rows naming the user, in primary-key order."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            order = [
                r["attname"]
                for r in cur.execute(
                    "SELECT a.attname FROM pg_index AS i "
                    "JOIN pg_attribute AS a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey::int2[]) "
                    "WHERE i.indrelid = %s::regclass AND i.indisprimary "
                    "ORDER BY array_position(i.indkey::int2[], a.attnum)",
                    (table,),
                ).fetchall()
            ] or [column]
            query = sql.SQL("{} ORDER BY {} OFFSET %s LIMIT %s").format(
                _match_user("SELECT * FROM {table}", table, column), _ident_list(order)
            )
            return cur.execute(query, (user_id, offset, limit)).fetchall()

    def record_access(
        self,
        subject_id: uuid.UUID | None,
        accessor: str,
        action: str,
        resource: str,
        outcome: str = "disclosed",
        rule: str | None = None,
    ) -> None:
        """Add one entry to the record of disclosures (no data, only who, what, when)."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO access_log (subject_id, accessor, action, resource, outcome, rule) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (subject_id, accessor, action, resource, outcome, rule),
            )

    def disclosures(self, subject_id: uuid.UUID, before_id: int | None, limit: int) -> list[Row]:
        """The subject's access log, newest first, ``limit`` entries older than ``before_id``."""
        return self._all(
            "SELECT id, accessor, action, resource, accessed_at, outcome, rule FROM access_log "
            "WHERE subject_id = %s AND id < coalesce(%s::bigint, 9223372036854775807) "
            "ORDER BY id DESC LIMIT %s",
            (subject_id, before_id, limit),
        )

    def enforce_retention(self, cutoff: datetime, batch: int = 5000) -> dict[str, int]:
        """Delete detailed events older than ``cutoff``: per table, partitions or rows removed.

        Partitioned history tables lose whole months before the cutoff's month (a
        catalog operation); the others are deleted from in batches, so no single
        transaction holds locks on millions of rows.
        """
        result: dict[str, int] = {}
        with self._pool.connection() as conn:
            for table in PARTITIONED_HISTORY:
                dropped = conn.execute(
                    "SELECT drop_monthly_partitions_before(%s::regclass, %s::date)",
                    (table, cutoff.date()),
                ).fetchall()
                result[table] = len(dropped)
            first_kept = cutoff.astimezone(UTC).date().replace(day=1)
            deletions: list[tuple[str, str, datetime | date]] = [
                (table, column, cutoff) for table, column in RETENTION_COLUMNS.items()
            ]
            deletions += [(table, "day", first_kept) for table in DAILY_SUMMARIES]
            for table, column, before in deletions:
                query = sql.SQL(
                    "DELETE FROM {t} WHERE ctid = ANY(ARRAY("
                    "SELECT ctid FROM {t} WHERE {c} < %s LIMIT %s))"
                ).format(t=sql.Identifier(table), c=sql.Identifier(column))
                total = 0
                while True:
                    deleted = conn.execute(query, (before, batch)).rowcount
                    total += deleted
                    if deleted < batch:
                        break
                result[table] = total
        return result

    # --- roll-ups ----------------------------------------------------------------------------

    def commit_rollup(self, claim: str, rows: Sequence[RollupRow]) -> bool:
        """Add one claimed bucket's counts, once: False when the claim was committed before."""
        with self._pool.connection() as conn, conn.transaction():
            first = conn.execute(
                "INSERT INTO rollup_claims (claim) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1",
                (claim,),
            ).fetchone()
            if first is None:
                return False
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO activity_rollups "
                    "(bucket_start, bucket_seconds, metric, dimension, value) "
                    "VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (bucket_start, bucket_seconds, metric, dimension) "
                    "DO UPDATE SET value = activity_rollups.value + EXCLUDED.value",
                    [
                        (r.bucket_start, r.bucket_seconds, r.metric, r.dimension, r.value)
                        for r in rows
                    ],
                )
        return True

    def rollup_totals(self, metric: str) -> dict[str, int]:
        """Sum of a metric per dimension over all time (tests and operators)."""
        rows = self._all(
            "SELECT dimension, sum(value)::bigint AS total FROM activity_rollups "
            "WHERE metric = %s GROUP BY dimension",
            (metric,),
        )
        return {row["dimension"]: int(row["total"]) for row in rows}


R = TypeVar("R", bound=PostgresRepository)
_repositories: dict[tuple[type[PostgresRepository], str], PostgresRepository] = {}
_repositories_lock = threading.Lock()


def shared_repository(kind: type[R]) -> R:
    """The process-wide ``kind`` for the configured POSTGRES_DSN: one pool per class and DSN.

    The persist path and the reports (``ReportsRepository``) each get their
    own pool, so report scans never hold the connections writes need.
    """
    settings = get_settings()
    key = (kind, settings.postgres_dsn)
    with _repositories_lock:
        repository = _repositories.get(key)
        if repository is None:
            repository = _repositories[key] = kind(
                settings.postgres_dsn, timeout=settings.postgres_timeout_seconds
            )
        return cast(R, repository)  # keyed by its class


def get_postgres() -> PostgresRepository:
    """The process-wide repository for the configured POSTGRES_DSN."""
    return shared_repository(PostgresRepository)
