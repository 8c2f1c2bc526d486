"""Archive keys, property splitting and batching: the pure logic, no storage needed."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared import limits
from shared.models.events import ActivityEvent, event_adapter
from shared.repositories.archive_entities import (
    EVENT_JSON,
    EVENT_JSON_PARTS,
    REF_SUFFIX,
    ArchiveEntityTooLargeError,
    InvalidKeyError,
    check_key,
    chunk_entities,
    entity_size,
    event_entities,
    event_json,
    partition_key,
    row_key,
    split_utf16,
    table_name,
    user_of,
    user_range,
    utf16_len,
)
from tests import factories as f

RECEIVED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EMOJI = "\U0001f600"  # outside the BMP: two UTF-16 code units
CJK = "\u4e2d"  # in the BMP: one code unit, three UTF-8 bytes
# What the service forbids in keys (the archive allows far less).
FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def event(raw: dict[str, Any]) -> ActivityEvent:
    parsed: ActivityEvent = event_adapter.validate_python(raw)
    return parsed


# --- keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["a/b", "a\\b", "a#b", "a?b", "a\x00b", "a\tb", "a\x7fb", "", "a b", "x" * 1025]
)
def test_check_key_rejects_unsafe_keys(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)


def test_check_key_accepts_what_the_archive_builds() -> None:
    key = f"20261103T142501123456Z_{uuid.uuid4()}{REF_SUFFIX}"
    assert check_key(key) == key


def test_row_key_is_the_user_then_utc_time_then_event_id() -> None:
    user = uuid.UUID("7a1b2c3d-0000-4000-8000-00000000abcd")
    event_id = uuid.UUID("0d5e3f4a-1b2c-4d5e-8f90-a1b2c3d4e5f6")
    moment = datetime(2026, 11, 3, 15, 25, 1, 123456, tzinfo=timezone(timedelta(hours=1)))
    expected = f"{user}_20261103T142501123456Z_{event_id}"
    assert row_key(str(user).upper(), moment, event_id) == expected
    low, high = user_range(user)
    assert low <= expected < high
    assert user_of(expected) == str(user)
    # Another user's keys are outside the range, whatever their ids.
    for other in (uuid.UUID(int=user.int + 1), uuid.UUID(int=user.int - 1)):
        assert not low <= row_key(other, moment, event_id) < high


def test_table_is_the_utc_month_of_the_event() -> None:
    # 00:30 on 1 December in UTC+1 is still November in UTC.
    moment = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert table_name("activityarchive", moment) == "activityarchive202611"


def test_partition_key_is_one_of_a_few_buckets_by_the_user() -> None:
    users = [uuid.uuid4() for _ in range(2000)]
    buckets = [partition_key(user) for user in users]
    assert partition_key(str(users[0]).upper()) == buckets[0]  # the canonical UUID decides
    expected = {f"p{n:03d}" for n in range(limits.ARCHIVE_PARTITIONS)}
    assert set(buckets) == expected
    # Spread evenly: no bucket holds twice its share.
    share = len(users) / limits.ARCHIVE_PARTITIONS
    assert max(buckets.count(bucket) for bucket in expected) < 2 * share
    with pytest.raises(ValueError, match="UUID"):
        partition_key("42/../x")


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
)
def test_row_keys_sort_in_time_order(first: datetime, second: datetime) -> None:
    user = uuid.uuid4()
    a = row_key(user, first.replace(tzinfo=UTC), uuid.uuid4())
    b = row_key(user, second.replace(tzinfo=UTC), uuid.uuid4())
    if first < second:
        assert a < b
    elif first > second:
        assert a > b


OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))]
)


@settings(max_examples=200, deadline=None)
@given(
    event_type=st.sampled_from(sorted(f.FACTORIES)),
    ids=st.lists(st.uuids(), min_size=4, max_size=4),
    moment=st.datetimes(
        min_value=datetime(2000, 1, 2), max_value=datetime(2026, 1, 1), timezones=OFFSETS
    ),
)
def test_keys_of_any_valid_event_are_safe(
    event_type: str, ids: list[uuid.UUID], moment: datetime
) -> None:
    raw = f.FACTORIES[event_type]()
    model = event(raw)
    overrides: dict[str, Any] = {"event_id": str(ids[0]), model.time_field: f.iso(moment)}
    overrides[model.actor_field] = str(ids[1])
    if event_type == "feedback":
        overrides["student_id"] = str(ids[2])
    entities = event_entities(event(raw | overrides), RECEIVED)
    for entity in entities:
        for key in (entity["PartitionKey"], entity["RowKey"]):
            assert check_key(key) == key
            assert not FORBIDDEN.search(key)


# --- splitting -----------------------------------------------------------------


def test_utf16_len_counts_non_bmp_characters_twice() -> None:
    assert utf16_len("ab") == 2
    assert utf16_len(CJK) == 1
    assert utf16_len(EMOJI) == 2


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * 32_000, 1),
        ("a" * 32_001, 2),
        (EMOJI * 16_000, 1),
        (EMOJI * 16_001, 2),
        (EMOJI * 32_000, 2),
        (CJK * 32_000, 1),
        ("a" + EMOJI * 16_000, 2),  # the pair that does not fit moves whole
    ],
)
def test_split_respects_the_utf16_limit(text: str, parts: int) -> None:
    split = split_utf16(text)
    assert len(split) == parts
    assert "".join(split) == text
    assert all(utf16_len(part) <= limits.TABLE_PROPERTY_MAX_CHARS for part in split)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.integers(min_value=2, max_value=20))
def test_split_is_lossless_and_never_cuts_a_pair(text: str, max_units: int) -> None:
    split = split_utf16(text, max_units)
    assert "".join(split) == text
    for part in split:
        assert 0 < utf16_len(part) <= max_units
        part.encode("utf-16-le")  # a cut surrogate pair would not encode


def test_split_needs_room_for_one_non_bmp_character() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_utf16(EMOJI, 1)


# --- entities --------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(f.FACTORIES))
def test_entity_carries_the_event(event_type: str) -> None:
    model = event(f.FACTORIES[event_type]())
    entity = event_entities(model, RECEIVED)[0]
    assert entity["PartitionKey"] == partition_key(model.actor_id)
    assert entity["RowKey"] == row_key(model.actor_id, model.occurred_at, model.event_id)  # type: ignore[arg-type]
    assert entity["event_id"] == str(model.event_id)
    assert entity["type"] == event_type
    assert entity["user_id"] == str(model.actor_id)
    assert entity["user_ids"] == ",".join(map(str, model.user_ids))
    assert entity["occurred_at"] == model.occurred_at
    assert entity["received_at"] == RECEIVED
    assert json.loads(event_json(entity)) == model.model_dump(mode="json")


def test_event_without_id_gets_the_deterministic_one() -> None:
    raw = f.lesson_progress()
    del raw["event_id"]
    first = event_entities(event(raw), RECEIVED)[0]
    again = event_entities(event(raw), RECEIVED)[0]
    assert first["RowKey"] == again["RowKey"]
    assert json.loads(first[EVENT_JSON])["event_id"] == first["event_id"]


def test_feedback_leaves_a_reference_in_the_students_range() -> None:
    model = event(f.feedback())
    student = model.student_id  # type: ignore[attr-defined]
    own, ref = event_entities(model, RECEIVED)
    assert ref == {
        "PartitionKey": partition_key(student),
        "RowKey": row_key(student, model.occurred_at, model.event_id) + REF_SUFFIX,  # type: ignore[arg-type]
        "ref_partition": own["PartitionKey"],
        "ref_row": own["RowKey"],
        "user_id": str(model.actor_id),
        "event_id": own["event_id"],
        "type": "feedback",
        "role": "student_id",
        "occurred_at": own["occurred_at"],
        "content_digest": model.content_digest,
    }


def test_feedback_to_oneself_needs_no_reference() -> None:
    teacher = f.new_id()
    assert (
        len(event_entities(event(f.feedback(teacher_id=teacher, student_id=teacher)), RECEIVED))
        == 1
    )


def test_long_json_is_split_and_reassembled() -> None:
    model = event(f.forum_activity(content=EMOJI * limits.MAX_CONTENT_CHARS))
    entity = event_entities(model, RECEIVED)[0]
    assert EVENT_JSON not in entity
    assert entity[EVENT_JSON_PARTS] == 3  # 64,000 units of content plus the rest
    assert json.loads(event_json(entity)) == model.model_dump(mode="json")


def test_entity_size_follows_the_published_formula() -> None:
    entity = {"PartitionKey": "ab", "RowKey": "c", "s": "xy", "n": 1, "t": RECEIVED}
    # 4 + 3 key chars * 2, then (8 + 2 + value) per property.
    assert entity_size(entity) == 4 + 6 + (10 + 4 + 4) + (10 + 4) + (10 + 8)


def _worst_cases() -> list[tuple[str, dict[str, Any]]]:
    """Events at the model's size limits, with text that costs the most to store."""
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, char in [("quote", '"'), ("emoji", EMOJI), ("cjk", CJK), ("newline", "\n")]:
        text = char * limits.MAX_CONTENT_CHARS
        cases += [
            (f"forum {name}", f.forum_activity(content=text)),
            (f"feedback {name}", f.feedback(feedback_text=text[: limits.MAX_FEEDBACK_TEXT_CHARS])),
            (
                f"content {name}",
                f.content_activity(
                    action="updated",
                    title=char * limits.MAX_TITLE_CHARS,
                    changes_summary=char * limits.MAX_CHANGES_SUMMARY_CHARS,
                ),
            ),
        ]
        if char != "\n":  # section names refuse control characters
            sections = [char * limits.MAX_SECTION_NAME_CHARS] * limits.MAX_SECTIONS_READ
            cases.append((f"sections {name}", f.lesson_progress(sections_read=sections)))
    # Answers are limited by their serialized length, so emoji is the worst case.
    per_answer = limits.MAX_ANSWERS_JSON_CHARS // limits.MAX_ANSWERS - 12
    answers = {f"q{i:03d}": EMOJI * per_answer for i in range(limits.MAX_ANSWERS)}
    cases.append(("answers emoji", f.quiz_attempt(answers=answers)))
    polls = [f.new_id() for _ in range(limits.MAX_POLLS_LAUNCHED)]
    cases.append(("polls", f.live_class_engagement(polls_launched=polls)))
    # A control character other than \n, \t, ... becomes a 6-character \u escape.
    cases += [
        ("forum control", f.forum_activity(content="\x01" * limits.MAX_CONTENT_CHARS)),
        (
            "content control",
            f.content_activity(
                action="updated",
                title="\x01" * limits.MAX_TITLE_CHARS,
                changes_summary="\x01" * limits.MAX_CHANGES_SUMMARY_CHARS,
            ),
        ),
    ]
    return cases


@pytest.mark.parametrize(
    ("name", "raw"), _worst_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_worst_case_events_fit_in_one_entity(name: str, raw: dict[str, Any]) -> None:
    entity = event_entities(event(raw), RECEIVED)[0]
    assert entity_size(entity) <= limits.TABLE_ENTITY_MAX_BYTES, name
    assert len(entity) <= 252  # the service's property limit, keys included


def test_oversized_entity_is_refused_with_a_clear_error() -> None:
    # 1,000 section names made of control characters (each escaped to six
    # characters in the JSON) would not fit; the model refuses them, and the
    # archive's own guard refuses such an event if one ever got past it.
    sections = ["\x01" * limits.MAX_SECTION_NAME_CHARS] * limits.MAX_SECTIONS_READ
    raw = f.lesson_progress(sections_read=sections)
    with pytest.raises(ValidationError, match="control characters"):
        event(raw)
    unchecked = event(f.lesson_progress()).model_copy(update={"sections_read": sections})
    with pytest.raises(ArchiveEntityTooLargeError, match=str(unchecked.event_id)):
        event_entities(unchecked, RECEIVED)


# --- transactions ------------------------------------------------------------------


def _entities(count: int, text: str = "") -> list[dict[str, Any]]:
    return [{"PartitionKey": "p", "RowKey": f"r{i:04d}", "t": text} for i in range(count)]


def test_chunks_hold_at_most_100_entities() -> None:
    assert [len(c) for c in chunk_entities(_entities(250))] == [100, 100, 50]


def test_chunks_stay_under_the_byte_budget() -> None:
    # ~840 KB of ASCII-escaped CJK per entity: four would pass the 3 MiB budget.
    chunks = list(chunk_entities(_entities(10, CJK * 140_000)))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]


def test_an_entity_over_the_budget_goes_alone() -> None:
    chunks = list(chunk_entities(_entities(2, "x"), max_bytes=10))
    assert [len(c) for c in chunks] == [1, 1]
