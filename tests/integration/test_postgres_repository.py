"""The PostgreSQL store: migrations, the persist path and its merges, partitions.

Tests without the ``postgres_dsn`` fixture are pure (no database). Every
database test makes its own ids, so tests share the session's database safely.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from shared.migrate import SQL_DIR, MigrationError, load_migrations, migrate
from shared.models.events import (
    EVENT_MODELS,
    ActivityEvent,
    Feedback,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
    event_adapter,
)
from shared.repositories.postgres import PostgresRepository
from shared.repositories.postgres.persist import persist_params, unique_events
from shared.repositories.postgres.tables import (
    HISTORY_TABLES,
    LESSON_PROGRESS,
    LIVE_CLASS_ENGAGEMENT,
    MERGED_TABLES,
    TYPE_BY_MODEL,
    Merge,
    MergedTable,
    event_columns,
    merge_rows,
)
from tests import factories as f
from tests.conftest import scratch_database

RECEIVED = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = datetime.now(UTC).replace(microsecond=0)

Conn = psycopg.Connection[dict[str, Any]]


def event(raw: dict[str, Any]) -> ActivityEvent:
    parsed: ActivityEvent = event_adapter.validate_python(raw)
    return parsed


def iso(moment: datetime) -> str:
    return f.iso(moment)


@pytest.fixture(scope="module")
def repo(postgres_dsn: str) -> Iterator[PostgresRepository]:
    with PostgresRepository(postgres_dsn, max_size=2) as repository:
        yield repository


@pytest.fixture(scope="module")
def db(postgres_dsn: str) -> Iterator[Conn]:
    """A plain connection, to look at what the repository wrote."""
    with psycopg.connect(postgres_dsn, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def rows_of(db: Conn, table: str, column: str, value: object) -> list[dict[str, Any]]:
    query = sql.SQL("SELECT * FROM {} WHERE {} = %s").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    return db.execute(query, (value,)).fetchall()


def first_row(db: Conn, table: str, column: str, value: object) -> dict[str, Any] | None:
    """The stored row whose ``column`` is ``value`` (a unique column), or None."""
    found = rows_of(db, table, column, value)
    return found[0] if found else None


def recent_ledger(db: Conn, user_id: uuid.UUID, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ledger entries of events naming the user in any role."""
    return db.execute(
        "SELECT * FROM event_ledger WHERE user_ids @> ARRAY[%s]::uuid[] "
        "ORDER BY occurred_at DESC, event_id DESC LIMIT %s",
        (user_id, limit),
    ).fetchall()


def event_id(stored: ActivityEvent) -> uuid.UUID:
    assert stored.event_id is not None
    return stored.event_id


def ledger_count(db: Conn, event_ids: Sequence[uuid.UUID | None]) -> int:
    row = db.execute(
        "SELECT count(*) AS n FROM event_ledger WHERE event_id = ANY(%s)", (event_ids,)
    ).fetchone()
    assert row is not None
    return int(row["n"])


def merged_row(db: Conn, spec: MergedTable, values: dict[str, Any]) -> dict[str, Any]:
    where = sql.SQL(" AND ").join(
        sql.SQL("{} = %s").format(sql.Identifier(name)) for name in spec.key
    )
    query = sql.SQL("SELECT * FROM {} WHERE {}").format(sql.Identifier(spec.table), where)
    (row,) = db.execute(query, [values[name] for name in spec.key]).fetchall()
    return row


def state_of(row: dict[str, Any], spec: MergedTable) -> dict[str, Any]:
    return {name: row[name] for name in spec.columns}


# --- pure helpers (no database) -------------------------------------------------------------


def test_every_model_has_exactly_one_home() -> None:
    merged_models = {spec.model for spec in MERGED_TABLES}
    for model in EVENT_MODELS:
        assert (model in HISTORY_TABLES) or (model in merged_models), model
    assert set(TYPE_BY_MODEL) == set(EVENT_MODELS)


@pytest.mark.parametrize("spec", MERGED_TABLES, ids=lambda spec: spec.table)
def test_merge_rules_cover_every_field_of_the_model(spec: MergedTable) -> None:
    assert set(spec.columns) == set(event_columns(spec.model))
    assert len(spec.columns) == len(set(spec.columns))
    assert spec.rules["event_id"] is Merge.LATEST
    assert spec.latest_by in spec.rules


def test_event_columns_leave_out_the_discriminator() -> None:
    assert event_columns(QuizAttempt)[0] == "event_id"
    assert "type" not in event_columns(QuizAttempt)
    assert "answers" in event_columns(QuizAttempt)


def _lesson_rows() -> list[dict[str, Any]]:
    base = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    specs = [
        # (started +min, completed +min or None, percent, watch, sections, accessed +min)
        (5, None, 20.0, 100, ["b", "a"], 10),
        (0, None, 35.5, 90, ["c"], 30),
        (3, 50, 100.0, 400, ["a", "d"], 50),
        (1, 45, 90.0, 380, [], 50),  # ties on last_accessed_at: event_id decides
    ]
    rows = []
    for index, (started, completed, percent, watch, sections, accessed) in enumerate(specs):
        rows.append(
            {
                "event_id": uuid.UUID(int=index + 1),
                "student_id": uuid.UUID(int=100),
                "lesson_id": uuid.UUID(int=200),
                "started_at": base + timedelta(minutes=started),
                "completed_at": None if completed is None else base + timedelta(minutes=completed),
                "progress_percent": percent,
                "video_watch_time": watch,
                "sections_read": sections,
                "last_accessed_at": base + timedelta(minutes=accessed),
            }
        )
    return rows


def test_merge_rows_applies_the_lesson_progress_rules() -> None:
    rows = _lesson_rows()
    (merged,) = merge_rows(LESSON_PROGRESS, rows).values()
    assert merged["started_at"] == rows[1]["started_at"]
    assert merged["completed_at"] == rows[3]["completed_at"]  # min non-null
    assert merged["progress_percent"] == 100.0
    assert merged["video_watch_time"] == 400
    assert merged["sections_read"] == ["a", "b", "c", "d"]
    assert merged["last_accessed_at"] == rows[2]["last_accessed_at"]
    assert merged["event_id"] == uuid.UUID(int=4)  # the tie goes to the greater event_id


def test_merge_rows_ignores_order_and_repetition() -> None:
    rows = _lesson_rows()
    expected = merge_rows(LESSON_PROGRESS, rows)
    for permutation in itertools.permutations(rows):
        assert merge_rows(LESSON_PROGRESS, permutation) == expected
        assert merge_rows(LESSON_PROGRESS, [*permutation, *permutation[:2]]) == expected


def test_unique_events_assigns_ids_and_keeps_first_occurrence() -> None:
    raw = f.lesson_progress()
    without_id = {key: value for key, value in raw.items() if key != "event_id"}
    first, again = event(without_id), event(without_id)
    other = event(f.quiz_attempt())
    result = unique_events([first, other, again, other])
    assert [e.event_id is not None for e in result] == [True, True]
    assert result[0].event_id == first.with_event_id().event_id
    assert result[1] is other


def test_persist_params_name_every_user_in_the_ledger() -> None:
    feedback = Feedback.model_validate(f.feedback())
    params = persist_params([feedback, feedback], RECEIVED)
    (entry,) = json.loads(params["event_ledger"].dumps(params["event_ledger"].obj))
    assert entry["type"] == "feedback"
    assert entry["user_ids"] == [str(feedback.teacher_id), str(feedback.student_id)]
    assert entry["actor_id"] == str(feedback.teacher_id)
    (row,) = json.loads(params["feedback"].dumps(params["feedback"].obj))
    assert row == feedback.model_dump(mode="json")  # what jsonb_populate_recordset reads
    assert params["lesson_progress"].obj == []
    with pytest.raises(ValueError, match="timezone"):
        persist_params([feedback], datetime(2026, 1, 1))  # naive on purpose


def test_migration_files_are_numbered_and_unique() -> None:
    names = [migration.name for migration in load_migrations()]
    assert names == sorted(names)
    assert names[0].startswith("001_")


def test_migration_files_must_follow_the_naming_rule(tmp_path: Path) -> None:
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_snake_case"):
        load_migrations(tmp_path)


# --- schema ----------------------------------------------------------------------------------


def test_table_columns_are_the_model_fields(db: Conn) -> None:
    def columns(table: str) -> list[str]:
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [row["column_name"] for row in rows]

    for model, table in HISTORY_TABLES.items():
        assert columns(table) == [*event_columns(model), "received_at"], table
    for spec in MERGED_TABLES:
        assert set(columns(spec.table)) == {*spec.columns, "received_at", "updated_at"}
    assert columns("activity_rollups") == [
        "bucket_start",
        "bucket_seconds",
        "metric",
        "dimension",
        "value",
    ]


# --- persisting ------------------------------------------------------------------------------


def test_every_type_is_stored_with_all_fields(repo: PostgresRepository, db: Conn) -> None:
    events = [event(raw) for raw in f.one_of_each()]
    assert repo.persist_events(events, RECEIVED) == len(events)

    for stored_event in events:
        model = type(stored_event)
        expected = stored_event.model_dump(exclude={"type"})
        table = HISTORY_TABLES.get(model)
        if table is not None:
            (row,) = rows_of(db, table, "event_id", stored_event.event_id)
            assert {name: row[name] for name in event_columns(model)} == expected
            assert row["received_at"] == RECEIVED
        for spec in MERGED_TABLES:
            if spec.model is model:
                row = merged_row(db, spec, expected)
                (folded,) = merge_rows(spec, [expected]).values()  # arrays sorted, distinct
                assert state_of(row, spec) == folded
                assert row["received_at"] == RECEIVED

        (entry,) = rows_of(db, "event_ledger", "event_id", stored_event.event_id)
        assert entry["type"] == TYPE_BY_MODEL[model]
        assert entry["actor_id"] == stored_event.actor_id
        assert entry["user_ids"] == list(stored_event.user_ids)
        assert entry["occurred_at"] == stored_event.occurred_at
        assert entry["received_at"] == RECEIVED


def test_read_helpers_return_plain_rows(repo: PostgresRepository, db: Conn) -> None:
    progress = LessonProgress.model_validate(f.lesson_progress())
    live = LiveClassEngagement.model_validate(f.live_class_engagement())
    quiz = QuizAttempt.model_validate(f.quiz_attempt())
    repo.persist_events([progress, live, quiz], RECEIVED)

    (lesson,) = repo.lesson_progress_for_student(progress.student_id)
    assert lesson["lesson_id"] == progress.lesson_id
    assert lesson["sections_read"] == sorted(progress.sections_read)
    (teacher,) = repo.live_session(live.session_id)
    assert teacher["teacher_id"] == live.teacher_id
    attempt = first_row(db, "quiz_attempts", "attempt_id", quiz.attempt_id)
    assert attempt is not None
    assert attempt["answers"] == quiz.answers
    assert first_row(db, "quiz_attempts", "attempt_id", uuid.uuid4()) is None
    assert first_row(db, "event_ledger", "event_id", uuid.uuid4()) is None
    repo.ping()


def test_the_same_event_twice_in_one_batch_is_stored_once(
    repo: PostgresRepository, db: Conn
) -> None:
    forum = event(f.forum_activity())
    progress = event(f.lesson_progress())
    assert repo.persist_events([forum, progress, forum, progress], RECEIVED) == 2
    assert len(rows_of(db, "forum_activity", "event_id", forum.event_id)) == 1
    assert len(rows_of(db, "lesson_progress_events", "event_id", progress.event_id)) == 1
    assert ledger_count(db, [forum.event_id, progress.event_id]) == 2


def test_the_same_event_in_two_messages_is_stored_once(repo: PostgresRepository, db: Conn) -> None:
    content = event(f.content_activity())
    assert repo.persist_events([content, event(f.feedback())], RECEIVED) == 2
    # A client retry: the same event in another message, next to a new one.
    assert repo.persist_events([event(f.feedback()), content], RECEIVED + timedelta(1)) == 1
    (row,) = rows_of(db, "content_activity", "event_id", content.event_id)
    assert row["received_at"] == RECEIVED


def test_a_redelivered_message_changes_nothing(repo: PostgresRepository, db: Conn) -> None:
    batch = [event(raw) for raw in f.one_of_each()]
    assert repo.persist_events(batch, RECEIVED) == 6
    progress = next(e for e in batch if isinstance(e, LessonProgress))
    (before,) = rows_of(db, "lesson_progress", "student_id", progress.student_id)

    assert repo.persist_events(batch, RECEIVED) == 0
    assert repo.persist_events(list(reversed(batch)), RECEIVED + timedelta(hours=1)) == 0
    (after,) = rows_of(db, "lesson_progress", "student_id", progress.student_id)
    assert after == before  # not even updated_at moved: old events touch no table
    assert ledger_count(db, [e.event_id for e in batch]) == 6


def test_floats_round_trip_exactly(repo: PostgresRepository, db: Conn) -> None:
    progress = LessonProgress.model_validate(f.lesson_progress(progress_percent=100 / 3))
    quiz = QuizAttempt.model_validate(f.quiz_attempt(score=0.1 + 0.2))
    repo.persist_events([progress, quiz], RECEIVED)
    (lesson,) = repo.lesson_progress_for_student(progress.student_id)
    assert lesson["progress_percent"] == 100 / 3
    attempt = first_row(db, "quiz_attempts", "attempt_id", quiz.attempt_id)
    assert attempt is not None
    assert attempt["score"] == 0.1 + 0.2


def test_events_without_an_id_are_recognised_on_retry(repo: PostgresRepository, db: Conn) -> None:
    raw = f.forum_activity()
    del raw["event_id"]
    assert repo.persist_events([event(raw)], RECEIVED) == 1
    assert repo.persist_events([event(raw)], RECEIVED) == 0
    event_id = event(raw).with_event_id().event_id
    assert len(rows_of(db, "forum_activity", "event_id", event_id)) == 1


def _ordered_ids(count: int) -> list[uuid.UUID]:
    """Fresh event ids sharing a random prefix: their low bits (1..count) order them."""
    prefix = uuid.uuid4().int & ~0xFFFF
    return [uuid.UUID(int=prefix | index) for index in range(1, count + 1)]


def _lesson_events(student_id: uuid.UUID, lesson_id: uuid.UUID) -> list[ActivityEvent]:
    """Four snapshots of one lesson, with fresh event ids in the same order each time."""
    events = []
    rows = _lesson_rows()
    for event_id, row in zip(_ordered_ids(len(rows)), rows, strict=True):
        raw = {
            "type": "lesson_progress",
            **{name: value for name, value in row.items() if name != "event_id"},
            "event_id": str(event_id),
            "student_id": str(student_id),
            "lesson_id": str(lesson_id),
        }
        for name in ("started_at", "completed_at", "last_accessed_at"):
            if raw[name] is not None:
                raw[name] = iso(raw[name])
        events.append(event(raw))
    return events


def _deliveries(events: list[ActivityEvent], mode: str) -> list[list[ActivityEvent]]:
    if mode == "one by one":
        return [[e] for e in events]
    if mode == "one batch":
        return [events]
    # Pairs, with the first pair redelivered at the end.
    pairs = [events[i : i + 2] for i in range(0, len(events), 2)]
    return [*pairs, pairs[0]]


@pytest.mark.parametrize("mode", ["one by one", "one batch", "pairs and a redelivery"])
def test_lesson_progress_merge_ignores_arrival_order(
    repo: PostgresRepository, db: Conn, mode: str
) -> None:
    lesson_id = uuid.uuid4()
    results = []
    for order in itertools.permutations(range(4)):
        student_id = uuid.uuid4()
        events = _lesson_events(student_id, lesson_id)
        for message in _deliveries([events[i] for i in order], mode):
            repo.persist_events(message, RECEIVED)
        (row,) = rows_of(db, "lesson_progress", "student_id", student_id)
        state = state_of(row, LESSON_PROGRESS) | {
            "student_id": None,
            "event_id": row["event_id"].int & 0xFFFF,  # which of the four snapshots
        }
        results.append(state)
        assert len(rows_of(db, "lesson_progress_events", "student_id", student_id)) == 4

    expected = merge_rows(LESSON_PROGRESS, _lesson_rows())[(uuid.UUID(int=100), uuid.UUID(int=200))]
    expected |= {"student_id": None, "lesson_id": lesson_id, "event_id": 4}
    assert all(state == expected for state in results)


def _live_events(session_id: uuid.UUID, class_id: uuid.UUID) -> list[ActivityEvent]:
    teacher_id = uuid.UUID(int=7)
    polls = [uuid.UUID(int=900 + n) for n in range(4)]
    joined = NOW - timedelta(hours=2)
    snapshots = [
        # (joined +min, left +min or None, duration, polls, messages)
        (0, None, 600, [polls[1]], 3),
        (2, None, 1800, [polls[0], polls[1]], 9),
        (0, 60, 3600, [polls[2]], 15),
        (1, 55, 3300, [], 14),
    ]
    events = []
    for event_id, (join, left, duration, launched, messages) in zip(
        _ordered_ids(len(snapshots)), snapshots, strict=True
    ):
        raw = f.live_class_engagement(
            event_id=str(event_id),
            teacher_id=str(teacher_id),
            class_id=str(class_id),
            session_id=str(session_id),
            joined_at=iso(joined + timedelta(minutes=join)),
            left_at=None if left is None else iso(joined + timedelta(minutes=left)),
            duration_seconds=duration,
            polls_launched=[str(p) for p in launched],
            messages_sent=messages,
        )
        events.append(event(raw))
    return events


@pytest.mark.parametrize("mode", ["one by one", "one batch", "pairs and a redelivery"])
def test_live_class_merge_ignores_arrival_order(
    repo: PostgresRepository, db: Conn, mode: str
) -> None:
    class_id = uuid.uuid4()
    results = []
    for order in itertools.permutations(range(4)):
        session_id = uuid.uuid4()
        events = _live_events(session_id, class_id)
        for message in _deliveries([events[i] for i in order], mode):
            repo.persist_events(message, RECEIVED)
        (row,) = repo.live_session(session_id)
        results.append(
            state_of(row, LIVE_CLASS_ENGAGEMENT)
            | {"session_id": None, "event_id": row["event_id"].int & 0xFFFF}
        )

    first = results[0]
    assert all(state == first for state in results)
    assert first["joined_at"] == NOW - timedelta(hours=2)
    assert first["left_at"] == NOW - timedelta(hours=2) + timedelta(minutes=60)
    assert first["duration_seconds"] == 3600
    assert first["polls_launched"] == [uuid.UUID(int=900 + n) for n in range(3)]
    assert first["messages_sent"] == 15
    assert first["class_id"] == class_id
    assert first["event_id"] == 3  # the longest snapshot

    # The reference fold agrees with the database.
    session_id = uuid.uuid4()
    events = _live_events(session_id, class_id)
    repo.persist_events(events, RECEIVED)
    (row,) = repo.live_session(session_id)
    folded = merge_rows(LIVE_CLASS_ENGAGEMENT, [e.model_dump() for e in events])
    assert state_of(row, LIVE_CLASS_ENGAGEMENT) == folded[(session_id, uuid.UUID(int=7))]


def test_a_second_event_for_an_attempt_is_ignored(repo: PostgresRepository, db: Conn) -> None:
    first = QuizAttempt.model_validate(f.quiz_attempt(score=6.0))
    resend = first.model_copy(update={"event_id": uuid.uuid4(), "score": 9.0})
    assert repo.persist_events([first], RECEIVED) == 1
    assert repo.persist_events([resend], RECEIVED) == 0
    attempt = first_row(db, "quiz_attempts", "attempt_id", first.attempt_id)
    assert attempt is not None
    assert (attempt["event_id"], attempt["score"]) == (first.event_id, 6.0)
    # The ledger lists stored events only.
    assert first_row(db, "event_ledger", "event_id", event_id(resend)) is None

    # Both in one message: the first in the message wins.
    one = QuizAttempt.model_validate(f.quiz_attempt(score=1.0))
    two = one.model_copy(update={"event_id": uuid.uuid4(), "score": 2.0})
    assert repo.persist_events([one, two, event(f.feedback())], RECEIVED) == 2
    attempt = first_row(db, "quiz_attempts", "attempt_id", one.attempt_id)
    assert attempt is not None
    assert attempt["event_id"] == one.event_id
    assert ledger_count(db, [one.event_id, two.event_id]) == 1


def test_feedback_names_teacher_and_student_in_the_ledger(
    repo: PostgresRepository, db: Conn
) -> None:
    feedback = Feedback.model_validate(f.feedback())
    repo.persist_events([feedback], RECEIVED)
    entry = first_row(db, "event_ledger", "event_id", event_id(feedback))
    assert entry is not None
    assert entry["user_ids"] == [feedback.teacher_id, feedback.student_id]
    assert entry["actor_id"] == feedback.teacher_id
    (recent,) = recent_ledger(db, feedback.student_id)
    assert recent["event_id"] == feedback.event_id


def test_recent_activity_is_newest_first(repo: PostgresRepository, db: Conn) -> None:
    student = f.new_id()
    events = [
        event(f.lesson_progress(student_id=student, last_accessed_at=f.ago(minutes=30))),
        event(f.quiz_attempt(student_id=student, submitted_at=f.ago(minutes=10))),
        event(f.feedback(student_id=student, created_at=f.ago(minutes=20))),
    ]
    repo.persist_events(events, RECEIVED)
    recent = recent_ledger(db, uuid.UUID(student), limit=2)
    assert [row["type"] for row in recent] == ["quiz_attempt", "feedback"]


def test_a_database_error_rolls_back_the_whole_batch(repo: PostgresRepository, db: Conn) -> None:
    valid = [event(raw) for raw in f.one_of_each()]
    # model_copy skips validation: the database's CHECK constraint is what fails.
    broken = event(f.lesson_progress()).model_copy(update={"progress_percent": 150.0})
    with pytest.raises(psycopg.errors.CheckViolation):
        repo.persist_events([*valid, broken], RECEIVED)

    ids = [e.event_id for e in valid]
    assert ledger_count(db, ids) == 0
    for model, table in HISTORY_TABLES.items():
        assert not [
            e for e in valid if type(e) is model and rows_of(db, table, "event_id", e.event_id)
        ]
    live = next(e for e in valid if isinstance(e, LiveClassEngagement))
    assert repo.live_session(live.session_id) == []
    # The queue retries: without the bad event the batch goes through.
    assert repo.persist_events(valid, RECEIVED) == 6


def test_an_unreachable_database_raises() -> None:
    with PostgresRepository(
        "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1", min_size=0, timeout=1
    ) as unreachable:
        with pytest.raises(PoolTimeout):
            unreachable.ping(timeout=1)
        with pytest.raises(PoolTimeout):
            unreachable.persist_events([event(f.feedback())], RECEIVED)


# --- partitions --------------------------------------------------------------------------------


def _partition_of(db: Conn, table: str, event_id: uuid.UUID | None) -> str:
    query = sql.SQL("SELECT tableoid::regclass::text AS part FROM {} WHERE event_id = %s").format(
        sql.Identifier(table)
    )
    row = db.execute(query, (event_id,)).fetchone()
    assert row is not None
    return str(row["part"])


@pytest.mark.parametrize("table", ["lesson_progress_events", "forum_activity"])
def test_monthly_partitions_cover_a_window_around_now(db: Conn, table: str) -> None:
    rows = db.execute(
        "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        (table,),
    ).fetchall()
    names = {row["relname"] for row in rows}
    assert f"{table}_default" in names
    month = NOW.date().replace(day=1)
    for offset in range(-12, 3):
        year, month_index = divmod(month.year * 12 + month.month - 1 + offset, 12)
        assert f"{table}_p{year:04d}_{month_index + 1:02d}" in names


def test_rows_land_in_their_month(repo: PostgresRepository, db: Conn) -> None:
    progress = event(f.lesson_progress())
    forum = event(f.forum_activity(created_at=f.iso(datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC))))
    old = event(f.forum_activity(created_at=f.iso(datetime(2019, 5, 3, tzinfo=UTC))))
    repo.persist_events([progress, forum, old], RECEIVED)

    this_month = progress.occurred_at.strftime("%Y_%m")
    assert _partition_of(db, "lesson_progress_events", progress.event_id) == (
        f"lesson_progress_events_p{this_month}"
    )
    assert _partition_of(db, "forum_activity", forum.event_id) == ("forum_activity_p2026_03")
    # Older than the window: DEFAULT, until maintenance creates its month.
    assert _partition_of(db, "forum_activity", old.event_id) == "forum_activity_default"
    created = db.execute(
        "SELECT ensure_monthly_partitions('forum_activity', '2019-04-01', 3) AS name"
    ).fetchall()
    assert [row["name"] for row in created] == [
        "forum_activity_p2019_04",
        "forum_activity_p2019_05",
        "forum_activity_p2019_06",
    ]
    assert _partition_of(db, "forum_activity", old.event_id) == "forum_activity_p2019_05"
    # Idempotent: nothing left to create.
    again = db.execute("SELECT ensure_monthly_partitions('forum_activity', '2019-04-01', 3)")
    assert again.fetchall() == []

    dropped = db.execute(
        "SELECT drop_monthly_partitions_before('forum_activity', '2019-06-15') AS name"
    ).fetchall()
    assert [row["name"] for row in dropped] == [
        "forum_activity_p2019_04",
        "forum_activity_p2019_05",
    ]
    assert rows_of(db, "forum_activity", "event_id", old.event_id) == []


# --- migrations ---------------------------------------------------------------------------------


@pytest.fixture
def scratch_dsn() -> Iterator[str]:
    """An empty database of its own, dropped afterwards."""
    with scratch_database(f"test_migrate_{uuid.uuid4().hex[:8]}") as dsn:
        yield dsn


def test_migrate_is_rerunnable(postgres_dsn: str, db: Conn) -> None:
    assert migrate(postgres_dsn) == []
    rows = db.execute("SELECT name, checksum FROM schema_migrations ORDER BY name").fetchall()
    assert [(r["name"], r["checksum"]) for r in rows] == [
        (m.name, m.checksum) for m in load_migrations()
    ]


def test_migrate_refuses_a_changed_migration(postgres_dsn: str, tmp_path: Path) -> None:
    migrations = load_migrations()
    for migration in migrations:
        (tmp_path / migration.name).write_bytes(migration.body)
    edited = tmp_path / migrations[1].name
    edited.write_bytes(migrations[1].body + b"\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match=migrations[1].name):
        migrate(postgres_dsn, tmp_path)


def test_concurrent_migrations_apply_each_file_once(scratch_dsn: str, tmp_path: Path) -> None:
    for migration in load_migrations():
        shutil.copy(SQL_DIR / migration.name, tmp_path / migration.name)
    applied: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            applied.append(migrate(scratch_dsn, tmp_path))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(name for names in applied for name in names) == [
        m.name for m in load_migrations()
    ]

    # A later file is picked up by the next run, and only it.
    (tmp_path / "999_later.sql").write_text("CREATE TABLE later (id int);")
    assert migrate(scratch_dsn, tmp_path) == ["999_later.sql"]
    assert migrate(scratch_dsn, tmp_path) == []


def test_a_failing_migration_leaves_nothing_behind(scratch_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "002_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT nope;")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        migrate(scratch_dsn, tmp_path)
    with psycopg.connect(scratch_dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations")]
        assert names == ["001_ok.sql"]
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
