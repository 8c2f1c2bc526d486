"""Several worker processes (FUNCTIONS_WORKER_PROCESS_COUNT) on one app: the HTTP
requests and the queue messages spread over them, consumers compete for the same
queues, and every event is still stored, archived and counted exactly once."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient

from tests.conftest import TestRun
from tests.devhost.conftest import CliHost, wait_until
from tests.integration.conftest import FUNCTION_KEY, fast_app_dir
from tests.integration.services import Stack, private_stack
from tests.integration.test_outages import (
    HOST_QUEUES,
    assert_exactly_once,
    assert_no_poison,
    batch,
    environ_for,
    post_until_accepted,
)

WORKERS = 2
REQUESTS = 40
RESENT = 10  # requests sent again whole, as a client that missed the 202 would


@pytest.fixture
def stack() -> Iterator[Stack]:
    with private_stack() as running:
        yield running


def waiting(connection: str, queue: str) -> int:
    """Messages in the queue, the invisible ones (in flight, or retried later) included."""
    with QueueClient.from_connection_string(connection, queue) as client:
        return client.get_queue_properties().approximate_message_count or 0


def post(url: str, events: list[dict[str, Any]]) -> None:
    # One connection per request, so the kernel spreads them over the workers.
    with httpx.Client(base_url=url, headers={"x-functions-key": FUNCTION_KEY}, timeout=30) as http:
        post_until_accepted(http, events)


def test_worker_processes_share_the_work_and_count_every_event_once(
    test_run: TestRun, scratch_dir: Path, stack: Stack
) -> None:
    environ = environ_for(test_run, stack) | {"FUNCTIONS_WORKER_PROCESS_COUNT": str(WORKERS)}
    host = CliHost(fast_app_dir(scratch_dir, **HOST_QUEUES), "--no-timers", environ=environ)
    try:
        host.wait_for("Host started", timeout=120)
        assert f"({WORKERS} worker processes on port {host.port})" in host.output
        batches = [batch() for _ in range(REQUESTS)]
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda events: post(host.url(""), events), batches + batches[:RESENT]))
        queues = [environ[name] for name in ("PERSIST_QUEUE", "ARCHIVE_QUEUE")]

        def drained() -> bool:
            return all(waiting(stack.azurite.connection, q) == 0 for q in queues)

        wait_until(drained, timeout=120, what="the queues drained")
        # Both workers took HTTP requests and queue messages.
        for function in ("ingest_events", "persist_events", "archive_events"):
            ran = set(
                re.findall(rf"\[worker (\d)\].*Executed 'Functions\.{function}'", host.output)
            )
            assert ran == {"0", "1"}, (function, ran)
        host.process.send_signal(signal.SIGTERM)
        assert host.wait_exit(timeout=30) == 0, host.output
    finally:
        host.close()
    assert_no_poison(stack, environ)
    assert_exactly_once(stack, test_run, [event for events in batches for event in events])
