"""How a queue function meets a failure (SPEC 13): wait out a dependency's
outage, dead-letter at once only what can never succeed.

The host's own retry (visibilityTimeout x maxDequeueCount, seconds to a
minute) is far shorter than a database failover or a cache restart, so the
functions do not leave transient failures to it. A message whose sink failed
because a dependency is unreachable is sent again to its own queue with a
visibility delay from ``RetryPolicy`` (its attempt count travels in the
envelope), and the function returns: the host deletes the original, whose
dequeue count never grows. A message that can never succeed (undecodable,
invalid, too large for a store, its payload blob gone) goes to
``<queue>-poison`` at once, its reason logged. Anything else, an error this
module does not know, is raised: the host retries it and finally poisons it,
as before. docs/decisions.md maps this onto the host's queue semantics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Protocol

import psycopg
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from pydantic import ValidationError
from redis import exceptions as redis_errors

from shared import limits, telemetry
from shared.models.messages import Envelope, RetryState, parse_envelope
from shared.repositories.archive_entities import ArchiveEntityTooLargeError
from shared.settings import get_settings

log = logging.getLogger(__name__)

# Unreachable, timing out, restarting, or a transaction that lost a race:
# the same message succeeds once the dependency is back.
_TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # connection refused or lost, pool timeout, shutdown
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.LockNotAvailable,
    # A deployment that has not applied the migrations yet: fixed by the operator.
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    ServiceRequestError,  # storage unreachable
    ServiceResponseError,  # storage timed out
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The message itself is wrong, or names something that is gone for good.
_PERMANENT: tuple[type[BaseException], ...] = (
    ValidationError,
    ValueError,  # undecodable JSON, a bad envelope (also ArchiveEntityTooLargeError)
    ResourceNotFoundError,  # the claim-check blob was deleted
    psycopg.DataError,
    psycopg.IntegrityError,
    ArchiveEntityTooLargeError,
)


class Failure(Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


def classify(exc: BaseException) -> Failure:
    """Whether retrying the same message later can succeed."""
    # TombstonesUnavailable is a RedisError raised when PostgreSQL is down too.
    if isinstance(exc, _TRANSIENT) or type(exc).__name__ == "TombstonesUnavailable":
        return Failure.TRANSIENT
    if isinstance(exc, HttpResponseError) and not isinstance(exc, ResourceNotFoundError):
        if exc.status_code in _TRANSIENT_STATUS:
            return Failure.TRANSIENT
        if exc.status_code is not None and 400 <= exc.status_code < 500:
            return Failure.PERMANENT  # the store refuses this content (too large, invalid)
    if isinstance(exc, _PERMANENT):
        return Failure.PERMANENT
    return Failure.UNKNOWN


@dataclass(frozen=True)
class RetryPolicy:
    """Growing delays, then the last one again, until ``horizon`` after the first failure."""

    delays: tuple[int, ...] = limits.SINK_RETRY_DELAYS_SECONDS
    horizon: timedelta = limits.SINK_RETRY_HORIZON

    def delay(self, attempt: int) -> int:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts failures, from 1)."""
        return self.delays[min(attempt, len(self.delays)) - 1]

    def gives_up(self, since: datetime, now: datetime) -> bool:
        return now - since >= self.horizon

    def schedule(self) -> list[tuple[int, int]]:
        """(attempt, seconds since the first failure) of every retry before giving up."""
        out, elapsed, attempt = [], 0, 1
        while elapsed < self.horizon.total_seconds():
            elapsed += self.delay(attempt)
            out.append((attempt + 1, elapsed))
            attempt += 1
        return out


def configured_policy() -> RetryPolicy:
    """The policy the settings ask for (SINK_RETRY_DELAYS, SINK_RETRY_HORIZON_SECONDS)."""
    settings = get_settings()
    return RetryPolicy(
        settings.sink_retry_delays, timedelta(seconds=settings.sink_retry_horizon_seconds)
    )


class Redelivery(Protocol):
    """Where a failed message goes (implemented by ``EventQueue``)."""

    def send_later(self, queue: str, body: bytes, delay_seconds: int) -> None: ...
    def dead_letter(self, queue: str, body: bytes) -> None: ...


@dataclass(frozen=True)
class Outcome:
    done: bool  # the sink took the message
    failure: Failure | None = None
    retry_in: int | None = None  # seconds, when sent again
    reason: str | None = None


def _reason(exc: BaseException) -> str:
    """Why it failed, for logs and the envelope: never the event's content."""
    if isinstance(exc, ValidationError):
        where = ", ".join(f"{'.'.join(map(str, e['loc']))} ({e['type']})" for e in exc.errors()[:5])
        return f"ValidationError: {exc.error_count()} error(s): {where}"[:300]
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]


def deliver(
    body: bytes,
    queue: str,
    sink: Callable[[bytes], object],
    redelivery: Redelivery,
    policy: RetryPolicy,
    now: datetime | None = None,
) -> Outcome:
    """Run ``sink`` on a message body; on failure, retry later or dead-letter by kind.

    Raises only what it cannot classify (the host then retries as usual), or
    when the queue itself cannot take the retry (the storage account is down:
    the host retries the original once it is back).
    """
    with telemetry.span(f"sink {queue}", queue=queue) as current:
        try:
            sink(body)
        except Exception as exc:
            kind = classify(exc)
            current.set_attribute("activity.failure", kind.value)
            if kind is Failure.UNKNOWN:
                raise
            at = now or datetime.now(UTC)
            if kind is Failure.PERMANENT:
                log.error("dead-lettered a message of %s (cannot succeed): %s", queue, _reason(exc))
                redelivery.dead_letter(queue, body)
                telemetry.messages_dead_lettered.add(1, {"queue": queue, "kind": kind.value})
                return Outcome(done=False, failure=kind, reason=_reason(exc))
            return _retry_later(body, queue, exc, redelivery, policy, at)
        return Outcome(done=True)


def _retry_later(
    body: bytes,
    queue: str,
    exc: BaseException,
    redelivery: Redelivery,
    policy: RetryPolicy,
    now: datetime,
) -> Outcome:
    envelope = parse_envelope(body)  # it parsed before, or the failure was permanent
    previous = envelope.retry
    attempt = (previous.attempt if previous else 0) + 1
    since = previous.since if previous else now
    reason = _reason(exc)
    if policy.gives_up(since, now):
        log.error(
            "dead-lettered a message of %s after %d attempts since %s: %s",
            queue,
            attempt,
            since.isoformat(),
            reason,
        )
        redelivery.dead_letter(queue, body)
        telemetry.messages_dead_lettered.add(1, {"queue": queue, "kind": "gave_up"})
        return Outcome(done=False, failure=Failure.TRANSIENT, reason=reason)
    delay = policy.delay(attempt)
    retried = envelope.model_copy(
        update={"retry": RetryState(attempt=attempt, since=since, reason=reason)}
    )
    redelivery.send_later(queue, retried_body(retried), delay)
    telemetry.messages_retried.add(1, {"queue": queue})
    log.warning(
        "a dependency failed for a message of %s (attempt %d); retrying in %d s: %s",
        queue,
        attempt,
        delay,
        reason,
    )
    return Outcome(done=False, failure=Failure.TRANSIENT, retry_in=delay, reason=reason)


def retried_body(envelope: Envelope) -> bytes:
    """The message body of an envelope sent again (events or the claim check as they were)."""
    return envelope.model_dump_json(exclude_none=True, exclude_defaults=False).encode()
