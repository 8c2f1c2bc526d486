"""When to retry a request and how long to wait first (pure functions)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A Retry-After beyond this is treated as this: a misconfigured server must not
# park a client for hours (the events stay buffered, so nothing is lost).
RETRY_AFTER_CAP_SECONDS = 300.0

# Jitter added on top of Retry-After (never subtracted: the server's delay is a
# minimum), so a crowd of clients told the same delay does not return in step.
RETRY_AFTER_JITTER = 0.1


def is_retryable(status: int) -> bool:
    """Whether an answer with this status may succeed when sent again unchanged.

    429 and 5xx are transient (503 is the API's "queue unreachable, nothing
    accepted"); 408 is a timeout. Every other answer is final: 202/422 carry
    per-event results and 400/413/415 describe the request itself.
    """
    return status in (408, 429) or 500 <= status <= 599


def retry_reason(status: int | None) -> str:
    """A short label for why a request is retried: "503", "429", "5xx", "connection"."""
    if status is None:
        return "connection"
    if status in (408, 429, 503):
        return str(status)
    return "5xx"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), None if absent or bad.

    A date in the past means "now" (0.0); the result is capped at
    ``RETRY_AFTER_CAP_SECONDS``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if seconds != seconds or seconds < 0:  # NaN or negative: not a delay
            return None
        return min(seconds, RETRY_AFTER_CAP_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, delta), RETRY_AFTER_CAP_SECONDS)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential back-off with jitter before retry number ``attempt`` (1, 2, ...).

    ``min(cap, base * 2**(attempt - 1))`` scaled by a random factor in
    [0.5, 1.0]: growing waits, and clients that failed together spread out.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return ceiling * (rng or random).uniform(0.5, 1.0)


def retry_delay(
    attempt: int,
    retry_after: float | None,
    base: float,
    cap: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt``.

    The server's ``Retry-After`` when it sent one (plus up to 10 % jitter,
    never less; at least the first back-off step, so ``Retry-After: 0`` does
    not become a busy loop), else ``backoff_delay``.
    """
    if retry_after is not None:
        jittered = retry_after * (1.0 + (rng or random).uniform(0.0, RETRY_AFTER_JITTER))
        return max(jittered, backoff_delay(1, base, cap, rng))
    return backoff_delay(attempt, base, cap, rng)
