"""The world's events over a time window, and their imperfect delivery."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from scripts.eventgen.model import (
    DUPLICATE_SPREAD_BATCHES,
    LATE_SPREAD_BATCHES,
    Config,
    Event,
    Weighted,
    busy_hours,
)
from scripts.eventgen.world import World

# --- the stream ----------------------------------------------------------------------


def _rng(config: Config, purpose: str) -> random.Random:
    # Separate streams, so that changing how events are delivered (duplicates,
    # shuffle, batch) never changes the world that produced them.
    return random.Random(f"eventgen:{config.seed}:{purpose}")


def _event_times(config: Config, end: datetime, rng: random.Random) -> Iterator[datetime]:
    """``config.events`` increasing times in the window, busier by day than by night."""
    n, days = config.events, config.days
    span = days * 86400.0
    start = end - timedelta(seconds=span)
    midnight = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_of_day = (start - midnight).total_seconds() / 86400.0
    u = 0.0
    for i in range(n):
        # The next order statistic of n uniforms: sorted, in O(1) memory.
        u = 1.0 - (1.0 - u) * rng.random() ** (1.0 / (n - i))
        warped: float = busy_hours(u, start_of_day, days)
        yield start + timedelta(seconds=min(span, max(0.0, warped * span)))


def world_events(config: Config) -> Iterator[Event]:
    """Every unique event once, in the order they happened."""
    end = config.now or datetime.now(UTC)
    world = World(config, _rng(config, "world"))
    kinds = Weighted(list(config.mix), list(config.mix.values()))
    choose = _rng(config, "mix")
    times = _event_times(config, end - timedelta(seconds=1), _rng(config, "time"))
    for moment in times:
        yield world.step(moment, kinds.pick(choose))


def deliver(events: Iterable[Event], config: Config) -> Iterator[Event]:
    """The events as clients send them: some re-sent, some late.

    Exactly ``round(events * duplicates)`` events are sent a second time (same
    ``event_id``, same content) up to a few batches later, and
    ``round(events * shuffle)`` arrive up to a few batches late. Memory stays
    bounded by that spread, so long streams are fine.
    """
    rng = _rng(config, "delivery")
    n = config.events
    resent = set(rng.sample(range(n), config.duplicate_count))
    late = set(rng.sample(range(n), round(n * config.shuffle)))
    window: list[tuple[float, int, Event]] = []
    order = itertools.count()
    for index, event in enumerate(events):
        key = float(index)
        if index in late:
            key += rng.uniform(1, LATE_SPREAD_BATCHES * config.batch)
        heapq.heappush(window, (key, next(order), event))
        if index in resent:
            again = key + rng.uniform(0, DUPLICATE_SPREAD_BATCHES * config.batch)
            heapq.heappush(window, (again, next(order), dict(event)))
        # Whatever is keyed below the next index can no longer be overtaken.
        while window and window[0][0] < index + 1:
            yield heapq.heappop(window)[2]
    while window:
        yield heapq.heappop(window)[2]


def generate(config: Config) -> Iterator[Event]:
    """The simulated stream, in arrival order, re-sends and late events included."""
    return deliver(world_events(config), config)


def batches(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    """Consecutive lists of at most ``size`` events."""
    iterator = iter(events)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
