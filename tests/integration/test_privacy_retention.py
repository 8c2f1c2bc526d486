"""Retention (SPEC 9): old detailed events leave PostgreSQL and the archive; the
persist and archive paths do not store them again when they are redelivered."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from devhost import DevHost
from shared.migrate import migrate
from shared.models.events import ActivityEvent, event_adapter
from shared.repositories.archive import ArchiveRepository
from shared.repositories.postgres import PostgresRepository
from shared.services.privacy import cutoff, enforce_retention
from tests import factories as f
from tests.conftest import TestRun, scratch_database
from tests.integration.conftest import MASTER_KEY, rows

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=1000)  # past the PostgreSQL window (730), inside the archive's
ANCIENT = NOW - timedelta(days=3000)  # past both


@pytest.fixture
def fresh_postgres(test_run: TestRun) -> Iterator[tuple[str, PostgresRepository]]:
    """A database of its own: retention deletes by age, whoever wrote the rows."""
    with scratch_database(f"test_retention_{test_run.run_id}") as dsn:
        migrate(dsn)
        with PostgresRepository(dsn) as repository:
            yield dsn, repository


def events_at(moment: datetime, student: str) -> list[ActivityEvent]:
    stamp = f.iso(moment)
    raw: list[dict[str, Any]] = [
        f.lesson_progress(
            student_id=student,
            started_at=stamp,
            last_accessed_at=f.iso(moment + timedelta(hours=1)),
        ),
        f.quiz_attempt(student_id=student, submitted_at=stamp),
        f.forum_activity(user_id=student, created_at=stamp),
        f.feedback(student_id=student, created_at=stamp),
        f.content_activity(timestamp=stamp),
    ]
    return [event_adapter.validate_python(event) for event in raw]


def test_postgres_retention_drops_old_months_and_rows_and_persist_keeps_them_out(
    fresh_postgres: tuple[str, PostgresRepository],
) -> None:
    dsn, postgres = fresh_postgres
    old_month = OLD.date().replace(day=1)
    for parent in ("lesson_progress_events", "forum_activity"):
        rows(dsn, "SELECT ensure_monthly_partitions(%s::regclass, %s, 1)", parent, old_month)
    old_student, new_student = f.new_id(), f.new_id()
    old, new = events_at(OLD, old_student), events_at(NOW - timedelta(days=1), new_student)
    assert postgres.persist_events(old + new, NOW) == 10

    result = enforce_retention(postgres, archive=_NoArchive(), postgres_days=730, archive_days=1)

    assert result["postgres"]["lesson_progress_events"] >= 1  # the old month's partition
    assert result["postgres"]["event_ledger"] == 5
    for parent in ("lesson_progress_events", "forum_activity"):
        name = rows(dsn, "SELECT monthly_partition_name(%s::regclass, %s)", parent, old_month)
        assert rows(dsn, "SELECT to_regclass(%s)", name[0][0]) == [(None,)]
    for table, column, kept in (
        ("event_ledger", "actor_id", 3),  # the student acted in three of the five
        ("lesson_progress_events", "student_id", 1),
        ("quiz_attempts", "student_id", 1),
        ("forum_activity", "user_id", 1),
        ("feedback", "student_id", 1),
        # The per-day summaries of the partitioned history lose the same days.
        ("lesson_daily_progress", "student_id", 1),
        ("forum_contributions", "user_id", 1),
        ("forum_post_authors", "user_id", 1),
    ):
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
            sql.Identifier(table), sql.Identifier(column)
        )
        with psycopg.connect(dsn) as conn:
            assert conn.execute(query, (uuid.UUID(old_student),)).fetchone() == (0,), table
            assert conn.execute(query, (uuid.UUID(new_student),)).fetchone() == (kept,), table
    assert rows(dsn, "SELECT count(*) FROM lesson_daily_totals") == [(1,)]
    # Current state (merged progress) is kept until the user is erased.
    assert len(postgres.lesson_progress_for_student(uuid.UUID(old_student))) == 1

    # A redelivered old event is not stored again once its ledger row is gone.
    assert postgres.persist_events(old, NOW, not_before=cutoff(730, NOW)) == 0
    assert rows(dsn, "SELECT count(*) FROM event_ledger") == [(5,)]


class _NoArchive:
    def drop_tables_before(self, before: datetime) -> list[str]:
        return []


def test_archive_retention_drops_whole_old_months(test_run: TestRun) -> None:
    archive = ArchiveRepository(
        test_run.storage_connection, test_run.archive_table_prefix + "ret", retry_total=0
    )
    try:
        student = f.new_id()
        ancient = events_at(ANCIENT, student)
        recent = events_at(NOW - timedelta(days=1), student)
        archive.archive_events(ancient + recent, NOW)
        tables = archive.list_archive_tables()
        assert len(tables) >= 2

        dropped = archive.drop_tables_before(cutoff(2555, NOW))

        assert dropped == [t for t in tables if t < archive.list_archive_tables()[0]]
        assert dropped
        kept = {record["event_id"] for record in archive.read_user(student)}
        assert kept == {
            str(event.event_id) for event in recent if uuid.UUID(student) in event.user_ids
        }
    finally:
        for table in archive.list_archive_tables():
            archive._service.delete_table(table)
        archive.close()


def test_the_pipeline_does_not_store_events_past_the_postgres_window(
    host: DevHost, client: httpx.Client, test_run: TestRun, archive: ArchiveRepository
) -> None:
    old = f.feedback(created_at=f.iso(OLD))
    assert client.post("v1/events", json=old).status_code == 202
    host.wait_idle(timeout=60)
    assert rows(
        test_run.postgres_dsn,
        "SELECT count(*) FROM event_ledger WHERE event_id = %s",
        old["event_id"],
    ) == [(0,)]
    # Still inside the archive's seven years.
    assert [r["event_id"] for r in archive.read_user(old["teacher_id"])] == [old["event_id"]]


def test_the_retention_timer_runs_on_the_host(host: DevHost) -> None:
    assert "enforce_retention" in [fn.name for fn in host.functions]
    response = httpx.post(
        f"{host.base_url}/admin/functions/enforce_retention",
        json={"input": ""},
        headers={"x-functions-key": MASTER_KEY},
        timeout=30,
    )
    assert response.status_code == 202
    host.wait_idle(timeout=60)
    assert "enforce_retention" not in host.errors
