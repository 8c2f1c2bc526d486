"""Telemetry (SPEC 14): the spans and metrics the app emits, caught by in-memory
exporters, through the real app on the session host and the real stores."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ServiceRequestError
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devhost import DevHost
from shared import telemetry
from shared.models.events import event_adapter
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.services.delivery import RetryPolicy, deliver
from shared.services.rollup import run_rollup
from tests import factories as f
from tests.conftest import TestRun

SECRET = "a sentence only this test writes"


@pytest.fixture(scope="module")
def exporters() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """In-memory exporters for the process's spans and metrics (set once per process)."""
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry.install_for_tests(spans, reader)
    return spans, reader


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def total(reader: InMemoryMetricReader, name: str, **attributes: str) -> float:
    return sum(
        getattr(point, "value", getattr(point, "count", 0))
        for point in points(reader).get(name, [])
        if all(point.attributes.get(k) == v for k, v in attributes.items())
    )


def test_ingest_and_every_sink_emit_spans_and_counts_without_content(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader],
    host: DevHost,
    client: httpx.Client,
    test_run: TestRun,
) -> None:
    spans, reader = exporters
    accepted = total(reader, "activity.events.accepted")
    spans.clear()
    me, someone = f.new_id(), f.new_id()
    batch = [
        f.forum_activity(user_id=me, content=SECRET),
        f.lesson_progress(student_id=me),
        f.lesson_progress(student_id=someone),  # refused: not the signed-in student
        f.quiz_attempt(score=-1),  # invalid
    ]
    person = {"X-MS-CLIENT-PRINCIPAL": f.principal(me, "Student")}
    assert client.post("v1/events", json={"events": batch}, headers=person).status_code == 202
    host.wait_idle(timeout=60)

    assert total(reader, "activity.events.accepted") - accepted == 2
    names = Counter(span.name for span in spans.get_finished_spans())
    assert names["http ingest_events"] == 1
    assert names[f"sink {test_run.persist_queue}"] >= 1
    assert names[f"sink {test_run.archive_queue}"] >= 1
    ingest = next(s for s in spans.get_finished_spans() if s.name == "http ingest_events")
    assert ingest.attributes["http.response.status_code"] == 202
    lag = [p for p in points(reader)["activity.queue.lag"] if p.attributes["queue"]]
    assert {p.attributes["queue"] for p in lag} >= {test_run.persist_queue, test_run.archive_queue}
    # Counts, queues, routes and ids: never what people wrote.
    for span in spans.get_finished_spans():
        assert SECRET not in str(dict(span.attributes or {})), span.name
    for name, found in points(reader).items():
        assert SECRET not in str([dict(p.attributes) for p in found]), name


def test_refusals_and_invalid_events_are_counted_by_reason(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader], client: httpx.Client
) -> None:
    _, reader = exporters
    counts = {
        r: total(reader, "activity.events.rejected", reason=r) for r in ("invalid", "refused")
    }
    me = f.new_id()
    person = {"X-MS-CLIENT-PRINCIPAL": f.principal(me, "Student")}
    events = [f.lesson_progress(student_id=f.new_id()), f.quiz_attempt(score=-1)]
    assert client.post("v1/events", json={"events": events}, headers=person).status_code == 422
    assert total(reader, "activity.events.rejected", reason="refused") == counts["refused"] + 1
    assert total(reader, "activity.events.rejected", reason="invalid") == counts["invalid"] + 1


def test_the_rollup_records_how_late_each_bucket_arrived(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader], test_run: TestRun
) -> None:
    _, reader = exporters
    views = RealtimeRepository(test_run.redis_url, f"{test_run.redis_prefix}telemetry:", 60)
    views.load_tombstones([])
    event = event_adapter.validate_python(f.lesson_progress())
    closed_at = datetime.now(UTC) - timedelta(minutes=10)
    views.apply_events([event], closed_at)
    seen = len(points(reader).get("activity.rollup.bucket_delay", []))
    with PostgresRepository(test_run.postgres_dsn) as postgres:
        assert run_rollup(views, postgres).committed == 1
    delays = points(reader)["activity.rollup.bucket_delay"]
    assert len(delays) >= max(seen, 1)
    assert sum(p.sum for p in delays) >= 9 * 60  # about ten minutes late, the bucket's age
    views.close()


def test_retries_and_dead_letters_are_counted_by_queue(
    exporters: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    _, reader = exporters
    queue = "telemetry-test"
    retried = total(reader, "activity.messages.retried", queue=queue)
    poisoned = total(reader, "activity.messages.dead_lettered", queue=queue, kind="permanent")
    later: list[int] = []
    poison: list[bytes] = []

    class Queues:
        def send_later(self, queue: str, body: bytes, delay_seconds: int) -> None:
            later.append(delay_seconds)

        def dead_letter(self, queue: str, body: bytes) -> None:
            poison.append(body)

    def unreachable(body: bytes) -> None:
        raise ServiceRequestError("storage unreachable")

    def undecodable(body: bytes) -> None:
        raise ValueError("not an envelope")

    body = b'{"v":1,"received_at":"2026-12-01T00:00:00Z","events":[]}'
    deliver(body, queue, unreachable, Queues(), RetryPolicy())
    deliver(b"garbage", queue, undecodable, Queues(), RetryPolicy())
    assert (later, poison) == ([10], [b"garbage"])
    assert total(reader, "activity.messages.retried", queue=queue) == retried + 1
    assert (
        total(reader, "activity.messages.dead_lettered", queue=queue, kind="permanent")
        == poisoned + 1
    )
