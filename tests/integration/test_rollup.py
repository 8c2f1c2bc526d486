"""rollup_counters is exactly-once: crash it at every step, run two at once, and
the totals in activity_rollups still equal the unique events sent."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.models.events import ActivityEvent, event_adapter
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.services.rollup import run_rollup
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import rows

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATER = BASE + timedelta(hours=1)


class Crash(Exception):
    pass


def crash_on(stage: str) -> Callable[[str], None]:
    def checkpoint(at: str) -> None:
        if at == stage:
            raise Crash(at)

    return checkpoint


_widths = iter(range(11, 10_000))


@pytest.fixture
def width() -> int:
    """A bucket width no other test uses, so its rows are this test's alone."""
    return next(_widths)


@pytest.fixture
def views(test_run: TestRun, width: int) -> Iterator[RealtimeRepository]:
    repository = RealtimeRepository(
        test_run.redis_url, f"{test_run.redis_prefix}rollup{width}:", width
    )
    yield repository
    for key in repository.client.scan_iter(match=f"{repository.prefix}*"):
        repository.client.delete(key)
    repository.close()


def random_events(count: int, seed: int) -> list[ActivityEvent]:
    rng = random.Random(seed)
    factories = list(f.FACTORIES.values())
    lessons, quizzes, threads = (
        [f.new_id() for _ in range(3)],
        [f.new_id() for _ in range(2)],
        [f.new_id() for _ in range(2)],
    )
    events = []
    for _ in range(count):
        factory = rng.choice(factories)
        over: dict[str, str] = {}
        if factory is f.lesson_progress:
            over["lesson_id"] = rng.choice(lessons)
        elif factory is f.quiz_attempt:
            over["quiz_id"] = rng.choice(quizzes)
        elif factory is f.forum_activity:
            over["thread_id"] = rng.choice(threads)
        events.append(event_adapter.validate_python(factory(**over)))
    return events


def send(views: RealtimeRepository, events: list[ActivityEvent], seed: int) -> None:
    """Apply events over several buckets, each twice (a retry), in random order."""
    rng = random.Random(seed)
    for event in events + rng.sample(events, len(events)):
        views.apply_events([event], BASE + timedelta(seconds=rng.randrange(0, 200)))


def totals(dsn: str, width: int) -> dict[tuple[str, str], int]:
    found = rows(
        dsn,
        "SELECT metric, dimension, sum(value) FROM activity_rollups "
        "WHERE bucket_seconds = %s GROUP BY metric, dimension",
        width,
    )
    return {(metric, dimension): int(total) for metric, dimension, total in found}


def expected(events: list[ActivityEvent]) -> dict[tuple[str, str], int]:
    counts: Counter[tuple[str, str]] = Counter(("events", e.event_type) for e in events)
    for event in events:
        if event.event_type == "quiz_attempt":
            counts["quiz_attempts", str(event.quiz_id)] += 1  # type: ignore[attr-defined]
        if event.event_type == "forum_activity":
            counts["forum_thread_actions", str(event.thread_id)] += 1  # type: ignore[attr-defined]
    return dict(counts)


def without_distinct(found: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    return {k: v for k, v in found.items() if k[0] != "lesson_active_students"}


def test_rollup_moves_closed_buckets_and_counts_each_unique_event(
    views: RealtimeRepository, postgres: PostgresRepository, test_run: TestRun, width: int
) -> None:
    events = random_events(60, seed=1)
    send(views, events, seed=1)
    result = run_rollup(views, postgres, now=LATER)
    assert result.committed == result.claims > 1
    assert without_distinct(totals(test_run.postgres_dsn, width)) == expected(events)
    assert not list(views.client.scan_iter(match=f"{views.prefix}ctr:*"))  # all moved
    # A second run finds nothing more to do.
    assert run_rollup(views, postgres, now=LATER).claims == 0
    assert without_distinct(totals(test_run.postgres_dsn, width)) == expected(events)


def test_distinct_students_per_lesson(
    views: RealtimeRepository, postgres: PostgresRepository, test_run: TestRun, width: int
) -> None:
    lesson, students = f.new_id(), [f.new_id() for _ in range(3)]
    at = BASE + timedelta(seconds=width * 3)  # all in one bucket
    for student in students + students[:1]:  # the first student twice (two events)
        event = event_adapter.validate_python(
            f.lesson_progress(student_id=student, lesson_id=lesson)
        )
        views.apply_events([event], at)
    run_rollup(views, postgres, now=LATER)
    assert totals(test_run.postgres_dsn, width)[("lesson_active_students", lesson)] == 3


def test_open_buckets_are_left_alone(
    views: RealtimeRepository, postgres: PostgresRepository, test_run: TestRun, width: int
) -> None:
    now = datetime.now(UTC)
    views.apply_events([event_adapter.validate_python(f.feedback())], now)
    assert run_rollup(views, postgres, now=now).claims == 0
    assert totals(test_run.postgres_dsn, width) == {}
    assert run_rollup(views, postgres, now=now + timedelta(seconds=width + 10)).committed == 1
    assert totals(test_run.postgres_dsn, width) == {("events", "feedback"): 1}


@pytest.mark.parametrize("stage", ["claimed", "read", "committed"])
def test_a_crash_at_any_step_neither_loses_nor_double_counts(
    views: RealtimeRepository,
    postgres: PostgresRepository,
    test_run: TestRun,
    width: int,
    stage: str,
) -> None:
    events = random_events(40, seed=2)
    send(views, events, seed=2)
    with pytest.raises(Crash):
        run_rollup(views, postgres, now=LATER, checkpoint=crash_on(stage))
    # More increments arrive for the same (already claimed) buckets meanwhile.
    late = random_events(10, seed=3)
    send(views, late, seed=3)
    for _ in range(3):  # the next runs, crash-free, finish the job
        run_rollup(views, postgres, now=LATER)
    assert without_distinct(totals(test_run.postgres_dsn, width)) == expected(events + late)
    assert not list(views.client.scan_iter(match=f"{views.prefix}ctr:claim*"))


def test_two_rollups_at_once_do_not_double_count(
    views: RealtimeRepository, postgres: PostgresRepository, test_run: TestRun, width: int
) -> None:
    events = random_events(80, seed=4)
    send(views, events, seed=4)
    # Leave claims behind (crash after reading), so both runs see the same claims.
    with pytest.raises(Crash):
        run_rollup(views, postgres, now=LATER, checkpoint=crash_on("read"))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            run_rollup(views, postgres, now=LATER)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert without_distinct(totals(test_run.postgres_dsn, width)) == expected(events)


def test_the_timer_function_is_registered_every_minute(app_functions: list[Any]) -> None:
    (timer,) = [fn for fn in app_functions if fn.get_function_name() == "rollup_counters"]
    assert timer.get_trigger().schedule == "0 * * * * *"
