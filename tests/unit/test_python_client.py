"""clients/python (activity_client): back-off, Retry-After, encoding and batch cutting."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from activity_client import events_url
from activity_client.batching import (
    MAX_EVENT_BYTES,
    MAX_REQUEST_BYTES,
    batch_length,
    body_size,
    encode_event,
    request_body,
    split_in_half,
)
from activity_client.retry import (
    RETRY_AFTER_CAP_SECONDS,
    backoff_delay,
    is_retryable,
    parse_retry_after,
    retry_delay,
    retry_reason,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


# --- which answers are retried ---------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_answers_are_retried(status: int) -> None:
    assert is_retryable(status)


@pytest.mark.parametrize("status", [200, 202, 400, 401, 403, 404, 413, 415, 422])
def test_final_answers_are_not_retried(status: int) -> None:
    assert not is_retryable(status)


def test_retry_reasons_name_what_happened() -> None:
    assert [retry_reason(s) for s in (503, 429, 500, 502, None)] == [
        "503",
        "429",
        "5xx",
        "5xx",
        "connection",
    ]


# --- Retry-After -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("  5 ", 5.0), ("0", 0.0), ("2.5", 2.5), ("100000", RETRY_AFTER_CAP_SECONDS)],
)
def test_retry_after_in_seconds(header: str, seconds: float) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, NOW) == 30.0
    earlier = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0
    far = format_datetime(NOW + timedelta(days=2), usegmt=True)
    assert parse_retry_after(far, NOW) == RETRY_AFTER_CAP_SECONDS


@pytest.mark.parametrize("header", [None, "", "   ", "soon", "-3", "nan", "Mon, 99 Foo"])
def test_missing_or_malformed_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header, NOW) is None


# --- back-off ----------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (500, 30.0)]:
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 100  # jittered, not in step


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0, 0.5, 30.0)


def test_retry_after_is_honoured_never_shortened() -> None:
    rng = random.Random(2)
    for attempt in (1, 5, 12):
        delays = [retry_delay(attempt, 1.0, 0.5, 30.0, rng) for _ in range(200)]
        assert all(1.0 <= d <= 1.1 for d in delays)
    # A long Retry-After wins over a short back-off, and over retry_max.
    assert retry_delay(1, 120.0, 0.5, 30.0, rng) >= 120.0


def test_retry_after_zero_is_not_a_busy_loop() -> None:
    delays = [retry_delay(3, 0.0, 0.5, 30.0) for _ in range(100)]
    assert all(0.25 <= d <= 0.5 for d in delays)


def test_without_retry_after_the_backoff_applies() -> None:
    rng = random.Random(3)
    assert 4.0 <= retry_delay(4, None, 1.0, 30.0, rng) <= 8.0


# --- encoding ------------------------------------------------------------------------


def test_events_encode_compact_utf8_with_datetimes_and_uuids() -> None:
    event_id = uuid.uuid4()
    body = encode_event(
        {
            "type": "forum_activity",
            "event_id": event_id,
            "content": "Quelle est la différence ? 📚",
            "created_at": datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
            "joined_at": datetime(2026, 11, 24, 11, 15, tzinfo=timezone(timedelta(hours=1))),
        }
    )
    assert b'": ' not in body
    assert b'", "' not in body
    assert "différence ? 📚".encode() in body  # UTF-8, not \u escapes
    assert json.loads(body) == {
        "type": "forum_activity",
        "event_id": str(event_id),
        "content": "Quelle est la différence ? 📚",
        "created_at": "2026-11-24T10:15:00Z",
        "joined_at": "2026-11-24T11:15:00+01:00",
    }


def test_naive_datetimes_and_nan_are_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="time zone"):
        encode_event({"type": "x", "created_at": datetime(2026, 11, 24, 10, 15)})
    with pytest.raises(ValueError, match="JSON compliant"):
        encode_event({"type": "quiz_attempt", "score": float("nan")})
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode_event({"type": "x", "blob": object()})


# --- cutting requests ------------------------------------------------------------------


def test_request_body_is_the_batch_envelope() -> None:
    parts = [encode_event({"type": "a", "n": n}) for n in range(3)]
    body = request_body(parts)
    assert json.loads(body) == {"events": [{"type": "a", "n": n} for n in range(3)]}
    assert body_size(len(p) for p in parts) == len(body)
    assert body_size([]) == len(request_body([]))


def test_batches_stop_at_max_events() -> None:
    assert batch_length([10] * 1000, 100) == 100
    assert batch_length([10] * 42, 100) == 42
    assert batch_length([10] * 1000, 500) == 500


def test_batches_stop_before_the_byte_limit() -> None:
    size = 300_000  # three fit in 1 MiB, four do not
    assert batch_length([size] * 10, 100) == 3
    assert batch_length([MAX_EVENT_BYTES, 10], 100) == 1
    assert batch_length([10, MAX_EVENT_BYTES], 100) == 1
    assert batch_length([MAX_REQUEST_BYTES * 2], 100) == 1  # never zero: the queue moves


# No deadline: a loaded CI machine must not turn a slow example into a failure.
@settings(deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=2, max_value=MAX_EVENT_BYTES), min_size=1, max_size=50),
    max_events=st.integers(min_value=1, max_value=500),
)
def test_every_batch_fits_one_request(sizes: list[int], max_events: int) -> None:
    remaining = list(sizes)
    while remaining:
        count = batch_length(remaining, max_events)
        assert 1 <= count <= max_events
        assert body_size(remaining[:count]) <= MAX_REQUEST_BYTES
        if count < len(remaining) and count < max_events:  # stopped by bytes: greedy
            assert body_size(remaining[: count + 1]) > MAX_REQUEST_BYTES
        remaining = remaining[count:]


@settings(deadline=None)
@given(st.lists(st.integers(), min_size=2, max_size=600))
def test_a_413_splits_into_halves_in_order(items: list[int]) -> None:
    first, second = split_in_half(items)
    assert first + second == items
    assert first
    assert second
    assert abs(len(first) - len(second)) <= 1


def test_one_event_cannot_be_split() -> None:
    with pytest.raises(ValueError, match="cannot be split"):
        split_in_half([1])


@pytest.mark.parametrize(
    "base",
    [
        "http://localhost:7071",
        "http://localhost:7071/",
        "http://localhost:7071/api",
        "http://localhost:7071/api/v1/events",
        "http://localhost:7071/api/v1/events/",
    ],
)
def test_the_events_url_from_a_base_url(base: str) -> None:
    assert events_url(base) == "http://localhost:7071/api/v1/events"
