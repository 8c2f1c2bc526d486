"""Hardening without services: the models under arbitrary input (hypothesis),
ids that try to break out of SQL, Redis keys or Table keys, the access log's
caller identity, and the export cursor."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.errors import InvalidInput
from shared.http import path_uuid
from shared.models.events import event_adapter
from shared.repositories.archive_entities import (
    InvalidKeyError,
    check_key,
    partition_key,
    user_range,
)
from shared.repositories.realtime import tombstone_digest
from shared.services import privacy
from tests import factories as f

FUZZ = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = sorted({name for factory in f.FACTORIES.values() for name in factory()})


@st.composite
def mangled_events(draw: st.DrawFn) -> Any:
    """A valid event of any type with some fields removed, replaced or added."""
    event: dict[str, Any] = draw(st.sampled_from(list(f.FACTORIES.values())))()
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=4)):
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop":
            event.pop(name, None)
        else:
            event[name] = draw(json_values)
    return event


@FUZZ
@given(st.one_of(json_values, mangled_events()))
def test_any_json_either_validates_or_raises_validation_error_only(raw: Any) -> None:
    with contextlib.suppress(ValidationError):
        event_adapter.validate_python(raw)


@FUZZ
@given(st.sampled_from(sorted(f.FACTORIES)), st.integers(0, 10_000), st.integers(0, 10**6))
def test_valid_events_round_trip_through_json(kind: str, seconds: int, micros: int) -> None:
    moment = f.iso(datetime.now(UTC) - timedelta(seconds=seconds, microseconds=micros))
    raw = f.FACTORIES[kind]()
    for field in ("created_at", "timestamp", "submitted_at", "joined_at"):
        if field in raw:
            raw[field] = moment
    if kind == "live_class_engagement":
        raw["left_at"] = None
    event = event_adapter.validate_python(raw)
    again = event_adapter.validate_json(event.model_dump_json())
    assert again == event
    assert again.user_ids == event.user_ids


HOSTILE_IDS = [
    "1' OR '1'='1",
    "x; DROP TABLE event_ledger; --",
    "$$; SELECT pg_sleep(10); $$",
    "a:b:c",  # Redis key separator
    "progress:*",  # Redis glob
    "\r\nFLUSHALL\r\n",
    "a/b",
    "a\\b",
    "a#b",
    "a?b",
    "tab\tchar",
    "\x00",
    "../../etc/passwd",
    "00000000-0000-4000-8000-000000000001' --",
    "0" * 10_000,
]


def request(route_params: dict[str, str], params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET",
        url="http://localhost/api/v1/users/x/export?code=secret-key",
        body=b"",
        route_params=route_params,
        params=params or {},
        headers={},
    )


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_hostile_ids_are_refused_before_reaching_any_store(hostile: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        path_uuid(request({"user_id": hostile}), "user_id")
    assert "user_id must be a UUID" in str(refused.value)
    assert len(str(refused.value)) < 200  # the echo is cut short


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_table_keys_refuse_what_the_service_forbids(hostile: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(hostile)


@pytest.mark.parametrize(
    "spelling",
    [
        "{12345678-1234-5678-1234-567812345678}",
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "12345678123456781234567812345678",
        "12345678-1234-5678-1234-567812345678".upper(),
    ],
)
def test_every_accepted_spelling_becomes_the_canonical_id(spelling: str) -> None:
    """Keys are built from the parsed UUID, so odd spellings cannot smuggle characters."""
    parsed = path_uuid(request({"user_id": spelling}), "user_id")
    assert str(parsed) == "12345678-1234-5678-1234-567812345678"
    assert user_range(parsed)[0] == f"{parsed}_"
    assert partition_key(parsed) == partition_key(str(parsed))


def test_the_tombstone_digest_is_the_scripts_sha1_of_the_canonical_id() -> None:
    user = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert tombstone_digest(user) == "d8aa3a332854a176bcd2f1da850186b34845dd8a"


def test_export_cursors_round_trip_and_refuse_garbage() -> None:
    cursor = privacy._encode_cursor("archive", ["t202601", "20260101T000000000000Z_x"])
    assert privacy._decode_cursor(cursor) == ("archive", ["t202601", "20260101T000000000000Z_x"])
    for garbage in ("", "!!!", "e30", "W10"):
        with pytest.raises(InvalidInput):
            privacy._decode_cursor(garbage)
