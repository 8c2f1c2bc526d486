"""The table archive against a real Azurite: what is stored, how often, and where."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient

from shared import limits
from shared.models.events import EVENT_TYPES, MODEL_BY_TYPE, ActivityEvent, event_adapter
from shared.repositories.archive import ArchiveRepository, get_archive
from shared.repositories.archive_entities import (
    EVENT_JSON,
    EVENT_JSON_PARTS,
    partition_key,
    utf16_len,
)
from shared.repositories.table_rest import TransactionSender
from tests import factories as f

if TYPE_CHECKING:
    from tests.conftest import TestRun

RECEIVED = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
# A fixed past month, so a test never straddles a month boundary by accident.
OCTOBER = datetime(2026, 10, 15, 9, 0, tzinfo=UTC)


def event(raw: dict[str, Any]) -> ActivityEvent:
    parsed: ActivityEvent = event_adapter.validate_python(raw)
    return parsed


@pytest.fixture
def archive(test_run: TestRun) -> Iterator[ArchiveRepository]:
    """An archive with tables of its own (the session's cleanup removes them too)."""
    repository = ArchiveRepository(
        test_run.storage_connection, f"{test_run.archive_table_prefix}{secrets.token_hex(3)}"
    )
    yield repository
    repository.close()


@pytest.fixture
def tables(test_run: TestRun) -> TableServiceClient:
    """A plain SDK client, to look at what the archive stored."""
    return TableServiceClient.from_connection_string(test_run.storage_connection)


def stored(
    tables: TableServiceClient, archive: ArchiveRepository, when: datetime = OCTOBER
) -> list[dict[str, Any]]:
    """Every entity of one monthly table, keys included."""
    return list(tables.get_table_client(f"{archive.table_prefix}{when:%Y%m}").list_entities())


@pytest.fixture
def count_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the transactions submitted from now on; each still reaches Azurite."""
    sizes: list[int] = []
    real = TransactionSender.insert

    def spy(self: TransactionSender, table: str, entities: Any) -> None:
        sizes.append(len(entities))
        real(self, table, entities)

    monkeypatch.setattr(TransactionSender, "insert", spy)
    return sizes


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_type_is_archived_with_every_field(
    archive: ArchiveRepository, tables: TableServiceClient, event_type: str
) -> None:
    model = event(f.FACTORIES[event_type]())

    assert archive.archive_events([model], RECEIVED) == (1, [])

    [record] = [r for r in archive.read_user(model.actor_id) if r["role"] == "actor"]
    assert record["event"] == model.model_dump(mode="json")
    assert record["event_id"] == str(model.event_id)
    assert record["type"] == event_type
    assert record["actor_id"] == str(model.actor_id)
    assert record["occurred_at"] == model.occurred_at
    month = model.occurred_at.strftime("%Y%m")
    assert record["table"] == f"{archive.table_prefix}{month}"
    raw = tables.get_table_client(record["table"]).get_entity(
        partition_key(model.actor_id),
        f"{model.actor_id}_{model.occurred_at:%Y%m%dT%H%M%S%fZ}_{model.event_id}",
    )
    assert raw["user_id"] == str(model.actor_id)
    assert raw["user_ids"] == ",".join(map(str, model.user_ids))
    assert raw["received_at"] == RECEIVED
    assert json.loads(raw[EVENT_JSON]) == model.model_dump(mode="json")


def test_the_same_event_twice_in_one_call_is_one_entity(archive: ArchiveRepository) -> None:
    model = event(f.quiz_attempt(submitted_at=f.iso(OCTOBER)))

    assert archive.archive_events([model, model], RECEIVED) == (1, [])

    assert archive.count_entities() == 1


def test_a_redelivery_leaves_the_first_write_instead_of_duplicating(
    archive: ArchiveRepository, tables: TableServiceClient
) -> None:
    models = [event(f.feedback(created_at=f.iso(OCTOBER))), event(f.lesson_progress())]
    archive.archive_events(models, RECEIVED)
    later = RECEIVED + timedelta(minutes=5)

    assert archive.archive_events(models, later) == (2, [])

    assert archive.count_entities() == 3  # two events and the feedback's reference
    received = {
        e["event_id"]: e["received_at"] for e in stored(tables, archive) if "received_at" in e
    }
    assert received[str(models[0].event_id)] == RECEIVED


def test_a_redelivered_message_of_many_users_is_compared_and_kept(
    archive: ArchiveRepository,
) -> None:
    """Many users share a partition: more existing entities than one query may name."""
    models = [
        event(f.forum_activity(created_at=f.iso(OCTOBER), action_type="like", content=None))
        for _ in range(80)
    ]
    archive.archive_events(models[:60], RECEIVED)  # 60 there already, 20 new
    changed = models[0].model_dump(mode="json") | {"thread_id": f.new_id()}

    written, conflicts = archive.archive_events([event(changed), *models[1:]], RECEIVED)

    assert written == 80
    assert [c.event_id for c in conflicts] == [str(models[0].event_id)]
    assert archive.count_entities() == 80
    assert {r["event"]["thread_id"] for r in archive.read_user(models[0].actor_id)} == {
        str(models[0].thread_id)  # type: ignore[attr-defined]
    }


def one_students_progress(count: int) -> tuple[str, list[ActivityEvent]]:
    """``count`` progress events of one student, a second apart (one partition)."""
    student = f.new_id()
    return student, [
        event(
            f.lesson_progress(
                student_id=student, last_accessed_at=f.iso(OCTOBER + timedelta(seconds=i))
            )
        )
        for i in range(count)
    ]


@pytest.fixture
def digest_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the archive read digests: point reads and whole-chunk queries."""
    calls = {"point": 0, "chunk": 0}
    point, chunk = ArchiveRepository._digest, ArchiveRepository._digests

    def count_point(self: ArchiveRepository, table: str, entity: Any) -> Any:
        calls["point"] += 1
        return point(self, table, entity)

    def count_chunk(self: ArchiveRepository, table: str, entities: Any) -> Any:
        calls["chunk"] += 1
        return chunk(self, table, entities)

    monkeypatch.setattr(ArchiveRepository, "_digest", count_point)
    monkeypatch.setattr(ArchiveRepository, "_digests", count_chunk)
    return calls


def test_an_existing_event_among_new_ones_costs_one_point_read(
    archive: ArchiveRepository, digest_reads: dict[str, int]
) -> None:
    """The refusal names the existing entity: it alone is read, the rest sent again."""
    student, models = one_students_progress(30)
    changed = event(models[20].model_dump(mode="json") | {"video_watch_time": 7})
    archive.archive_events([models[20]], RECEIVED)

    written, conflicts = archive.archive_events([*models[:20], changed, *models[21:]], RECEIVED)

    assert written == 30
    assert [c.event_id for c in conflicts] == [str(models[20].event_id)]
    assert digest_reads == {"point": 1, "chunk": 0}
    assert archive.count_entities() == 30
    [kept] = [r for r in archive.read_user(student) if r["event_id"] == str(changed.event_id)]
    assert kept["event"]["video_watch_time"] == models[20].video_watch_time  # type: ignore[attr-defined]


def test_a_redelivered_chunk_is_read_with_queries_after_one_point_read(
    archive: ArchiveRepository, digest_reads: dict[str, int]
) -> None:
    _, models = one_students_progress(30)
    archive.archive_events(models, RECEIVED)

    assert archive.archive_events(models, RECEIVED) == (30, [])

    assert digest_reads == {"point": 1, "chunk": 1}
    assert archive.count_entities() == 30


def test_a_second_version_of_an_event_keeps_the_first_and_is_reported(
    archive: ArchiveRepository, tables: TableServiceClient
) -> None:
    first = f.feedback(created_at=f.iso(OCTOBER), score=6.0)
    second = first | {"score": 9.0, "student_id": f.new_id()}  # same event_id, other content
    fresh = event(f.lesson_progress())
    archive.archive_events([event(first)], RECEIVED)

    written, conflicts = archive.archive_events([event(second), fresh], RECEIVED)

    assert written == 2
    assert [(c.event_id, c.first_digest, c.other_digest) for c in conflicts] == [
        (first["event_id"], event(first).content_digest, event(second).content_digest)
    ]
    [record] = [r for r in archive.read_user(first["teacher_id"]) if r["role"] == "actor"]
    assert record["event"]["score"] == 6.0
    # The kept-out version's reference does not point its student at the first.
    assert list(archive.read_user(second["student_id"])) == []
    assert [r["event_id"] for r in archive.read_user(fresh.student_id)] == [str(fresh.event_id)]


@pytest.mark.parametrize(
    ("name", "text", "parts"),
    [("emoji", "\U0001f600" * limits.MAX_CONTENT_CHARS, 3), ("cjk", "\u4e2d" * 32_000, 2)],
)
def test_a_long_post_is_split_across_properties_and_reassembled(
    archive: ArchiveRepository, tables: TableServiceClient, name: str, text: str, parts: int
) -> None:
    model = event(f.forum_activity(content=text, created_at=f.iso(OCTOBER)))

    archive.archive_events([model], RECEIVED)

    [entity] = stored(tables, archive)
    assert EVENT_JSON not in entity
    assert entity[EVENT_JSON_PARTS] == parts
    for index in range(parts):
        assert utf16_len(entity[f"{EVENT_JSON}_{index:03d}"]) <= limits.TABLE_PROPERTY_MAX_CHARS
    [record] = archive.read_user(model.actor_id)
    assert record["event"]["content"] == text, name
    assert record["event"] == model.model_dump(mode="json")


def test_250_events_of_one_user_take_3_transactions(
    archive: ArchiveRepository, count_transactions: list[int]
) -> None:
    student, models = one_students_progress(250)

    assert archive.archive_events(models, RECEIVED) == (250, [])

    assert sorted(count_transactions) == [50, 100, 100]
    assert archive.count_entities() == 250
    times = [r["occurred_at"] for r in archive.read_user(student)]
    assert times == sorted(times)  # RowKeys keep a user's events in time order


def test_many_users_in_one_call_share_a_few_transactions(
    archive: ArchiveRepository, count_transactions: list[int]
) -> None:
    models = [
        event(f.forum_activity(created_at=f.iso(OCTOBER), action_type="like", content=None))
        for _ in range(60)
    ]

    assert archive.archive_events(models, RECEIVED) == (60, [])

    assert archive.count_entities() == 60
    # One transaction per partition (bucket), not one write per user.
    assert len(count_transactions) <= limits.ARCHIVE_PARTITIONS
    assert sum(count_transactions) == 60
    for model in models:
        [record] = archive.read_user(model.actor_id)  # each user's range holds only theirs
        assert record["event_id"] == str(model.event_id)


def test_feedback_is_found_from_the_students_range(
    archive: ArchiveRepository, tables: TableServiceClient
) -> None:
    teacher, student = f.new_id(), f.new_id()
    model = event(f.feedback(teacher_id=teacher, student_id=student, created_at=f.iso(OCTOBER)))

    archive.archive_events([model], RECEIVED)

    [ref] = [e for e in stored(tables, archive) if e["RowKey"].startswith(student)]
    assert ref["PartitionKey"] == partition_key(student)
    assert ref["RowKey"].endswith("_ref")
    assert ref["ref_partition"] == partition_key(teacher)
    assert ref["ref_row"].startswith(f"{teacher}_")
    assert ref["role"] == "student_id"
    [record] = archive.read_user(student)
    assert record["role"] == "student_id"
    assert record["actor_id"] == teacher
    assert record["event"] == model.model_dump(mode="json")
    assert [r["role"] for r in archive.read_user(teacher)] == ["actor"]


def test_stored_keys_never_contain_forbidden_characters(
    archive: ArchiveRepository, tables: TableServiceClient
) -> None:
    raws = f.one_of_each()
    models = [event(raw | {MODEL_BY_TYPE[raw["type"]].time_field: f.iso(OCTOBER)}) for raw in raws]

    archive.archive_events(models, RECEIVED)

    keys = [k for e in stored(tables, archive) for k in (e["PartitionKey"], e["RowKey"])]
    assert len(keys) == 14  # six events and the feedback's reference
    assert not [k for k in keys if set(k) & set("/\\#?") or any(ord(c) < 32 for c in k)]


def test_events_of_different_months_land_in_different_tables(
    archive: ArchiveRepository, tables: TableServiceClient
) -> None:
    student = f.new_id()
    september, october = OCTOBER - timedelta(days=30), OCTOBER
    models = [
        event(f.quiz_attempt(student_id=student, submitted_at=f.iso(when)))
        for when in (october, september)
    ]

    archive.archive_events(models, RECEIVED)

    assert archive.list_archive_tables() == [
        f"{archive.table_prefix}202609",
        f"{archive.table_prefix}202610",
    ]
    assert len(stored(tables, archive, september)) == len(stored(tables, archive, october)) == 1
    assert [r["occurred_at"] for r in archive.read_user(student)] == [september, october]


@pytest.mark.parametrize("count", [1, 2])  # a plain upsert, and a transaction
def test_a_table_deleted_underneath_is_created_again(
    archive: ArchiveRepository, tables: TableServiceClient, count: int
) -> None:
    teacher = f.new_id()
    archive.archive_events([event(f.content_activity(timestamp=f.iso(OCTOBER)))], RECEIVED)
    tables.delete_table(f"{archive.table_prefix}{OCTOBER:%Y%m}")
    models = [
        event(f.content_activity(teacher_id=teacher, timestamp=f.iso(OCTOBER)))
        for _ in range(count)
    ]

    archive.archive_events(models, RECEIVED)

    assert archive.count_entities() == count


def test_delete_user_erases_every_entity_naming_them(archive: ArchiveRepository) -> None:
    teacher, student, other = f.new_id(), f.new_id(), f.new_id()
    at = f.iso(OCTOBER)
    graded = event(f.feedback(teacher_id=teacher, student_id=student, created_at=at))
    kept = event(f.feedback(teacher_id=teacher, student_id=other, created_at=at))
    own = event(f.lesson_progress(student_id=student, last_accessed_at=at))
    archive.archive_events([graded, kept, own], RECEIVED)

    # The student's event, the feedback about them and its reference.
    assert archive.delete_user(student) == 3

    assert list(archive.read_user(student)) == []
    assert [r["event_id"] for r in archive.read_user(teacher)] == [str(kept.event_id)]
    assert archive.delete_user(student) == 0
    # Erasing the teacher also removes the reference left with the other student.
    assert archive.delete_user(teacher) == 2
    assert archive.count_entities() == 0


def test_a_storage_failure_raises(test_run: TestRun) -> None:
    key = base64.b64encode(bytes(64)).decode()  # never used: nothing listens
    closed = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={key};TableEndpoint=http://127.0.0.1:9/devstoreaccount1"
    )
    archive = ArchiveRepository(closed, test_run.archive_table_prefix, retry_total=0)

    with pytest.raises(AzureError):
        archive.archive_events([event(f.lesson_progress())], RECEIVED)
    with pytest.raises(AzureError):
        archive.ping()


def test_ping_passes_against_azurite(archive: ArchiveRepository) -> None:
    archive.ping()


def test_get_archive_is_cached_per_connection_and_prefix(
    app_env: TestRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.settings import get_settings

    first = get_archive()
    assert get_archive() is first
    assert first.table_prefix == app_env.archive_table_prefix
    monkeypatch.setenv("ARCHIVE_TABLE_PREFIX", f"{app_env.archive_table_prefix}other")
    get_settings.cache_clear()
    assert get_archive() is not first


def test_events_without_an_id_are_archived_under_their_deterministic_id(
    archive: ArchiveRepository,
) -> None:
    raw = f.live_class_engagement(joined_at=f.iso(OCTOBER), left_at=None)
    del raw["event_id"]

    archive.archive_events([event(raw)], RECEIVED)
    archive.archive_events([event(raw)], RECEIVED)

    [record] = archive.read_user(raw["teacher_id"])
    assert uuid.UUID(record["event_id"]) == event(raw).with_event_id().event_id
