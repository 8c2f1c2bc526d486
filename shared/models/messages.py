"""The queue message format: several validated events packed per message.

A message is a JSON envelope ``{"v": 1, "received_at": ..., "events": [...]}``
of at most ``QUEUE_PAYLOAD_MAX_BYTES``, so that it stays under the 64 KiB queue
limit once base64-encoded (host.json ``messageEncoding``). An event too large to
fit alone travels by claim check: its envelope is stored as a blob and the
message carries ``{"v": 1, "received_at": ..., "payload_ref": "<blob name>"}``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared import limits
from shared.models.events import TRUSTED, ActivityEvent, Event

ENVELOPE_VERSION = 1


class RetryState(BaseModel):
    """A message sent again after a dependency failed (shared.services.delivery)."""

    model_config = ConfigDict(extra="forbid")

    attempt: int  # failures so far
    since: datetime  # the first failure
    reason: str  # the last failure, for whoever reads the queue


class Envelope(BaseModel):
    """One queue message: events accepted together, or a claim check for them."""

    model_config = ConfigDict(extra="forbid")

    v: int = ENVELOPE_VERSION
    received_at: datetime
    events: list[Event] = []
    payload_ref: str | None = None
    retry: RetryState | None = None


def _header(received_at: datetime) -> bytes:
    stamp = received_at.isoformat().replace("+00:00", "Z")
    return f'{{"v":{ENVELOPE_VERSION},"received_at":"{stamp}","events":['.encode()


def pack_events(
    events: Sequence[ActivityEvent],
    received_at: datetime,
    max_bytes: int = limits.QUEUE_PAYLOAD_MAX_BYTES,
) -> Iterator[tuple[bytes, bool]]:
    """Greedily pack events into envelopes of at most ``max_bytes``.

    Yields ``(payload, fits)``; ``fits`` is False for an envelope holding one
    event that alone exceeds ``max_bytes`` (the caller claim-checks it).
    Events keep their order.
    """
    header = _header(received_at)
    footer = b"]}"
    overhead = len(header) + len(footer)
    batch: list[bytes] = []
    size = overhead
    for event in events:
        body = event.model_dump_json(exclude_none=True).encode()
        extra = len(body) + (1 if batch else 0)
        if batch and size + extra > max_bytes:
            yield header + b",".join(batch) + footer, True
            batch, size = [], overhead
            extra = len(body)
        batch.append(body)
        size += extra
        if size > max_bytes:  # a single event too large for any message
            yield header + body + footer, False
            batch, size = [], overhead
    if batch:
        yield header + b",".join(batch) + footer, True


def claim_check(received_at: datetime, blob_name: str) -> bytes:
    """The message that stands in for an envelope stored as a blob."""
    return (
        Envelope(received_at=received_at, payload_ref=blob_name)
        .model_dump_json(exclude_defaults=False, exclude={"events"})
        .encode()
    )


def parse_envelope(payload: bytes | str) -> Envelope:
    """Parse a message body; events are trusted (they were validated at ingest)."""
    return Envelope.model_validate_json(payload, context={TRUSTED: True})
