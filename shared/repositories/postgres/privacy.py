"""The privacy store (SPEC 9): erasure, export, the record of disclosures, retention.

Which columns name a user is read from the catalog, so tables added later are
erased and exported too; retention drops whole months of the partitioned
history and deletes the other tables' old rows in batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import LiteralString

from psycopg import sql
from psycopg.rows import dict_row

from shared.repositories.postgres.pool import PooledRepository, Row, ident_list

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


class PrivacyRecords(PooledRepository):
    """Erasure and its tombstones, export, the access log and retention."""

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
                _match_user("SELECT * FROM {table}", table, column), ident_list(order)
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
