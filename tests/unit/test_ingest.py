"""Ingest without services: body parsing, per-event validation, packing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import limits
from shared.errors import InvalidInput
from shared.http import status_of
from shared.models.events import event_adapter
from shared.models.messages import claim_check, pack_events, parse_envelope
from shared.services.ingest import ingest, parse_body, validate_events
from tests import factories as f


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bool]] = []
        self.caught_up: list[tuple[bytes, bool]] = []

    def send(self, envelopes: list[tuple[bytes, bool]], received_at: datetime) -> None:
        self.sent.extend(envelopes)

    def send_catch_up(self, envelopes: list[tuple[bytes, bool]], received_at: datetime) -> None:
        self.caught_up.extend(envelopes)


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"{}", "text/plain", 415),
        (b"{}", None, 415),
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"text"', "application/json", 400),
        (b'{"events": 5}', "application/json", 400),
        (b'{"events": []}', "application/json", 400),
        (b'{"events": [], "extra": 1}', "application/json", 400),
        (b'{"foo": "bar"}', "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (body({"events": [{}] * (limits.MAX_EVENTS_PER_REQUEST + 1)}), "application/json", 413),
        (b" " * (limits.MAX_REQUEST_BYTES + 1), "application/json", 413),
    ],
)
def test_bad_bodies_are_refused_with_the_status_of_the_spec(
    raw: bytes, content_type: str | None, status: int
) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_body(raw, content_type)
    assert status_of(info.value) == status
    assert info.value.message


def test_single_event_and_batch_forms() -> None:
    event = f.feedback()
    assert parse_body(body(event), "application/json") == [event]
    assert parse_body(body({"events": [event]}), "application/json; charset=utf-8") == [event]


def test_bad_event_beside_good_ones_keeps_the_good_ones() -> None:
    good1, good2 = f.lesson_progress(), f.quiz_attempt()
    bad = f.feedback(feedback_type="video")
    sink = RecordingSink()
    result = ingest(body({"events": [good1, bad, good2]}), "application/json", sink)
    assert result.accepted == 2
    assert [str(i) for i in result.event_ids] == [good1["event_id"], good2["event_id"]]
    assert [r.index for r in result.rejected] == [1]
    assert result.rejected[0].errors[0].field == "feedback_type"
    queued = [e for payload, _ in sink.sent for e in parse_envelope(payload).events]
    assert [str(e.event_id) for e in queued] == [good1["event_id"], good2["event_id"]]


def test_nothing_valid_queues_nothing() -> None:
    sink = RecordingSink()
    result = ingest(body({"events": [{"type": "nope"}, 3]}), "application/json", sink)
    assert result.accepted == 0
    assert len(result.rejected) == 2
    assert sink.sent == []


def test_same_event_twice_in_a_batch_is_queued_once() -> None:
    event = f.forum_activity()
    validated = validate_events([event, dict(event)])
    assert len(validated.events) == 1
    assert validated.event_ids == [event["event_id"]] * 2


def test_reused_event_id_with_other_content_is_rejected() -> None:
    event = f.forum_activity()
    validated = validate_events([event, event | {"content": "changed"}])
    assert len(validated.events) == 1
    assert validated.rejected[0].index == 1
    assert validated.rejected[0].errors[0].field == "event_id"


def test_a_retry_of_a_recorded_event_is_accepted_and_not_queued_again() -> None:
    recorded, changed, new = f.quiz_attempt(), f.quiz_attempt(), f.lesson_progress()
    digests = {
        event_adapter.validate_python(raw).event_id: event_adapter.validate_python(
            raw
        ).content_digest
        for raw in (recorded, changed)
    }
    sink, applied = RecordingSink(), list[Any]()

    def record(events: list[Any], at: datetime) -> bool:
        applied.extend(events)
        return True

    result = ingest(
        body({"events": [recorded, changed | {"score": 1.0}, new, recorded]}),
        "application/json",
        sink,
        on_queued=record,
        first_versions=lambda ids: {i: digests[i] for i in ids if i in digests},
    )
    ids = [recorded["event_id"], new["event_id"], recorded["event_id"]]
    assert [str(i) for i in result.event_ids] == ids
    assert [r.index for r in result.rejected] == [1]  # the second version
    queued = [e for payload, _ in sink.sent for e in parse_envelope(payload).events]
    assert [str(e.event_id) for e in queued] == [new["event_id"]]
    assert [str(e.event_id) for e in applied] == [new["event_id"]]


def test_a_request_of_retries_only_queues_nothing() -> None:
    recorded = event_adapter.validate_python(f.feedback())
    sink = RecordingSink()
    result = ingest(
        body(recorded.model_dump(mode="json")),
        "application/json",
        sink,
        first_versions=lambda ids: {ids[0]: recorded.content_digest},
    )
    assert (result.accepted, result.rejected, sink.sent) == (1, [], [])


def _events(n: int, content_chars: int) -> list[Any]:
    return [
        event_adapter.validate_python(f.forum_activity(content="é" * content_chars))
        for _ in range(n)
    ]


def test_packing_keeps_every_message_under_the_queue_limit_after_base64() -> None:
    events = _events(300, 2_000)
    now = datetime.now(UTC)
    packed = list(pack_events(events, now))
    assert len(packed) > 1
    unpacked = []
    for payload, fits in packed:
        assert fits
        assert len(base64.b64encode(payload)) <= limits.QUEUE_MESSAGE_MAX_BYTES
        unpacked.extend(parse_envelope(payload).events)
    assert [e.event_id for e in unpacked] == [e.event_id for e in events]


def test_small_events_share_a_message() -> None:
    events = [event_adapter.validate_python(f.lesson_progress()) for _ in range(100)]
    assert len(list(pack_events(events, datetime.now(UTC)))) == 1


def test_an_event_too_big_for_a_message_is_marked_for_claim_check() -> None:
    small = _events(2, 10)
    huge = event_adapter.validate_python(f.forum_activity(content="字" * limits.MAX_CONTENT_CHARS))
    packed = list(pack_events([small[0], huge, small[1]], datetime.now(UTC)))
    assert [fits for _, fits in packed] == [True, False, True]
    assert parse_envelope(packed[1][0]).events == [huge]


def test_claim_check_round_trips() -> None:
    now = datetime.now(UTC)
    envelope = parse_envelope(claim_check(now, "2026/11/24/x.json"))
    assert envelope.payload_ref == "2026/11/24/x.json"
    assert envelope.events == []
    assert envelope.received_at == now


def test_queued_events_stay_valid_after_the_clock_moves() -> None:
    event = event_adapter.validate_python(f.lesson_progress())
    payload, _ = next(pack_events([event], datetime.now(UTC)))
    aged = payload.replace(
        event.model_dump(mode="json")["last_accessed_at"].encode(), b"2100-01-01T00:00:00Z"
    )
    assert parse_envelope(aged).events[0].occurred_at.year == 2100


@pytest.mark.parametrize("redis_applied", [True, False])
def test_the_realtime_queue_is_written_only_when_redis_missed_the_events(
    redis_applied: bool,
) -> None:
    sink = RecordingSink()
    seen: list[int] = []

    def update_redis(events: list[Any], at: datetime) -> bool:
        assert sink.sent, "Redis is updated only after the events are durable"
        seen.append(len(events))
        return redis_applied

    result = ingest(
        body({"events": [f.feedback(), f.quiz_attempt()]}), "application/json", sink, update_redis
    )
    assert result.accepted == 2
    assert seen == [2]
    assert len(sink.sent) == 1
    assert sink.caught_up == ([] if redis_applied else sink.sent)
