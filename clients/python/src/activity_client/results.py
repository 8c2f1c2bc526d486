"""What became of the events: per-request results, refusals, running totals, errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class BufferFull(Exception):
    """``send`` found ``max_buffer`` events waiting and no room freed up within ``buffer_timeout``.

    Nothing was buffered for this call: the event is the caller's to keep,
    retry or persist. Raised instead of dropping data silently.
    """


class ClientClosed(RuntimeError):
    """The client was closed; it takes no more events."""


class EventTooLarge(ValueError):
    """One event is larger than a whole request may be (1 MiB); the API could never take it."""


class FieldError(NamedTuple):
    """One reason the server gave for refusing an event."""

    field: str
    message: str


@dataclass(frozen=True)
class Rejection:
    """An event the server refused; it is not retried.

    ``status`` is the answer's: 202 or 422 for a per-event refusal (invalid,
    or not the caller's to send), 400/401/403/413/415/... when the request as a
    whole was refused (then ``errors`` has one entry, field ``(request)``).
    """

    event_id: str
    event: Mapping[str, Any]
    status: int
    errors: tuple[FieldError, ...]


@dataclass(frozen=True)
class BatchResult:
    """The final outcome of one request (after its retries), given to ``on_result``."""

    event_ids: tuple[str, ...]  # every event the request carried, in order
    status: int | None  # the last answer's status; None when none came (connection errors)
    accepted: int = 0
    rejected: tuple[Rejection, ...] = ()
    attempts: int = 0  # requests made for these events, retries included
    retries: Mapping[str, int] = field(default_factory=dict)  # why: "503", "429", "connection"...
    latencies: tuple[float, ...] = ()  # seconds, one per answered attempt
    error: str | None = None  # why the request as a whole did not succeed
    # Events given up on (closed before delivery, or max_attempts reached),
    # in full, for the caller to keep or re-send later.
    undelivered: tuple[Mapping[str, Any], ...] = ()

    @property
    def size(self) -> int:
        return len(self.event_ids)

    @property
    def delivered(self) -> bool:
        """True when the server gave a final answer (accepted, or refused: see ``rejected``)."""
        return not self.undelivered


@dataclass(frozen=True)
class Stats:
    """Running totals since the client was made (a snapshot)."""

    queued: int = 0  # events taken by send() and the event methods
    accepted: int = 0  # events the server accepted (a re-sent duplicate counts again)
    rejected: int = 0  # events the server refused (see ``ActivityClient.rejections``)
    undelivered: int = 0  # events given up on: closed first, or max_attempts reached
    pending: int = 0  # events buffered or in flight now
    requests: int = 0  # HTTP requests made, retries and 413 splits included
    retries: Mapping[str, int] = field(default_factory=dict)  # retried requests by reason
    splits: int = 0  # requests split in two after a 413
