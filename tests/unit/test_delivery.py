"""How a queue function meets failures (SPEC 13), as pure logic: which failures
wait and retry, which dead-letter at once, and the production schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from redis import exceptions as redis_errors

from shared import limits
from shared.models.messages import parse_envelope
from shared.repositories.realtime import TombstonesUnavailable
from shared.services.delivery import Failure, RetryPolicy, classify, deliver

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BODY = b'{"v":1,"received_at":"2026-12-01T11:59:00Z","events":[]}'


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (psycopg.OperationalError("connection refused"), Failure.TRANSIENT),
        (psycopg.errors.SerializationFailure(), Failure.TRANSIENT),
        (psycopg.errors.UndefinedTable(), Failure.TRANSIENT),
        (redis_errors.ConnectionError("down"), Failure.TRANSIENT),
        (redis_errors.TimeoutError(), Failure.TRANSIENT),
        (TombstonesUnavailable("both down"), Failure.TRANSIENT),
        (ServiceRequestError("unreachable"), Failure.TRANSIENT),
        (http_error(503), Failure.TRANSIENT),
        (http_error(429), Failure.TRANSIENT),
        (http_error(413), Failure.PERMANENT),
        (http_error(400), Failure.PERMANENT),
        (ResourceNotFoundError("blob gone"), Failure.PERMANENT),
        (ValueError("not JSON"), Failure.PERMANENT),
        (psycopg.errors.NotNullViolation(), Failure.PERMANENT),
        (KeyError("a bug"), Failure.UNKNOWN),
        (redis_errors.ResponseError("script error"), Failure.UNKNOWN),
    ],
)
def test_failures_are_classified_by_whether_a_retry_can_succeed(
    exc: Exception, kind: Failure
) -> None:
    assert classify(exc) is kind


def test_the_production_schedule_rides_out_a_failover_for_a_day() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(1, 8)] == [10, 30, 60, 120, 300, 300, 300]
    schedule = policy.schedule()
    # Attempts 2..6 come 10 s, 40 s, 100 s, 220 s and 520 s after the first failure.
    assert schedule[:5] == [(2, 10), (3, 40), (4, 100), (5, 220), (6, 520)]
    # A 30-minute outage is retried every 5 minutes from then on, never poisoned.
    assert max(at for _, at in schedule if at <= 30 * 60) == 1720
    assert schedule[-1][1] >= limits.SINK_RETRY_HORIZON.total_seconds()
    assert len(schedule) == 5 + (86_400 - 520) // 300 + 1


@dataclass
class Queues:
    later: list[tuple[str, bytes, int]] = field(default_factory=list)
    poison: list[tuple[str, bytes]] = field(default_factory=list)

    def send_later(self, queue: str, body: bytes, delay_seconds: int) -> None:
        self.later.append((queue, body, delay_seconds))

    def dead_letter(self, queue: str, body: bytes) -> None:
        self.poison.append((queue, body))


def failing(exc: Exception):  # type: ignore[no-untyped-def]
    def sink(body: bytes) -> None:
        raise exc

    return sink


def test_a_transient_failure_is_sent_again_later_carrying_its_attempts() -> None:
    queues, policy = Queues(), RetryPolicy()
    outcome = deliver(BODY, "q", failing(psycopg.OperationalError("down")), queues, policy, NOW)
    assert (outcome.done, outcome.failure, outcome.retry_in) == (False, Failure.TRANSIENT, 10)
    ((queue, body, delay),) = queues.later
    assert (queue, delay) == ("q", 10)
    retry = parse_envelope(body).retry
    assert retry is not None
    assert (retry.attempt, retry.since) == (1, NOW)
    assert "OperationalError" in retry.reason
    # The next failure keeps the first failure's time and waits longer.
    later = NOW + timedelta(seconds=10)
    deliver(body, "q", failing(psycopg.OperationalError("down")), queues, policy, later)
    second = parse_envelope(queues.later[1][1]).retry
    assert second is not None
    assert (second.attempt, second.since, queues.later[1][2]) == (2, NOW, 30)
    assert queues.poison == []


def test_past_the_horizon_a_transient_failure_is_dead_lettered() -> None:
    queues, policy = Queues(), RetryPolicy(delays=(1,), horizon=timedelta(minutes=30))
    first = deliver(BODY, "q", failing(ServiceRequestError("down")), queues, policy, NOW)
    assert first.retry_in == 1
    retried = queues.later[0][1]
    end = NOW + timedelta(minutes=30)
    gave_up = deliver(retried, "q", failing(ServiceRequestError("down")), queues, policy, end)
    assert gave_up.retry_in is None
    assert queues.poison == [("q", retried)]


def test_a_message_that_can_never_succeed_is_dead_lettered_at_once() -> None:
    queues = Queues()
    outcome = deliver(b"not json", "q", failing(ValueError("bad")), queues, RetryPolicy(), NOW)
    assert outcome.failure is Failure.PERMANENT
    assert queues.poison == [("q", b"not json")]
    assert queues.later == []


def test_an_unknown_failure_is_left_to_the_host() -> None:
    queues = Queues()
    with pytest.raises(KeyError):
        deliver(BODY, "q", failing(KeyError("bug")), queues, RetryPolicy(), NOW)
    assert queues.later == queues.poison == []


def test_success_sends_nothing() -> None:
    queues = Queues()
    assert deliver(BODY, "q", lambda body: None, queues, RetryPolicy(), NOW).done
    assert queues.later == queues.poison == []
