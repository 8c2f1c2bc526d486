"""Telemetry (SPEC 14): spans and metrics through OpenTelemetry, exported to
Application Insights when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set.

The code below records through the OpenTelemetry API only. Without a
configured SDK (locally, by default) every call is a no-op. ``configure()``
runs once per process when function_app.py is imported: with the connection
string it sets up ``azure-monitor-opentelemetry`` (traces, metrics and logs
to Application Insights, the Azure SDK calls as dependencies) and instruments
psycopg and redis, so the PostgreSQL and Redis calls are dependencies too.
Tests install in-memory exporters with ``install_for_tests``.

What is recorded names counts, queues, routes, event types and ids; never
event content or personal data beyond ids.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import metrics, trace

log = logging.getLogger(__name__)

CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
SCOPE = "activity-tracking"

_lock = threading.Lock()
_configured = False

tracer = trace.get_tracer(SCOPE)
meter = metrics.get_meter(SCOPE)

# Counters people alert on (docs/operations.md).
events_accepted = meter.create_counter(
    "activity.events.accepted", unit="{event}", description="events accepted by ingest"
)
events_rejected = meter.create_counter(
    "activity.events.rejected",
    unit="{event}",
    description="events refused by ingest, by reason: invalid, refused (access rule), conflict",
)
event_conflicts = meter.create_counter(
    "activity.events.conflicts",
    unit="{event}",
    description="second versions of an event a sink met and kept out, by sink",
)
messages_retried = meter.create_counter(
    "activity.messages.retried",
    unit="{message}",
    description="queue messages sent again because a dependency failed, by queue",
)
messages_dead_lettered = meter.create_counter(
    "activity.messages.dead_lettered",
    unit="{message}",
    description="queue messages moved to the poison queue, by queue and failure kind",
)
queue_lag = meter.create_histogram(
    "activity.queue.lag",
    unit="s",
    description="age of a message's events when its sink takes them (received to now)",
)
rollup_delay = meter.create_histogram(
    "activity.rollup.bucket_delay",
    unit="s",
    description="how long after a counter bucket closed it reached PostgreSQL",
)


def configure() -> bool:
    """Export to Application Insights when its connection string is set; once per process."""
    global _configured
    connection = os.environ.get(CONNECTION_SETTING, "").strip()
    if not connection:
        return False
    with _lock:
        if _configured:
            return True
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        configure_azure_monitor(connection_string=connection, logger_name="")
        PsycopgInstrumentor().instrument(enable_commenter=False)
        RedisInstrumentor().instrument()
        _configured = True
    log.info("telemetry: exporting to Application Insights")
    return True


def install_for_tests(span_exporter: Any, metric_reader: Any) -> None:
    """Route spans and metrics to in-memory exporters (tests; once per process)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    traces = TracerProvider()
    traces.add_span_processor(SimpleSpanProcessor(span_exporter))
    trace.set_tracer_provider(traces)
    metrics.set_meter_provider(MeterProvider(metric_readers=[metric_reader]))


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span named for what the code does, with plain attributes (no content)."""
    with tracer.start_as_current_span(name, attributes=_plain(attributes)) as current:
        yield current


def _plain(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        f"activity.{key}": value if isinstance(value, str | int | float | bool) else str(value)
        for key, value in attributes.items()
        if value is not None
    }


def record_lag(queue: str, received_at: datetime) -> None:
    """The age of a message's events as its sink takes them."""
    queue_lag.record(max(0.0, (datetime.now(UTC) - received_at).total_seconds()), {"queue": queue})
