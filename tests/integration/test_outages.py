"""Outages the service rides out by itself (SPEC 13), with private services.

Each test runs the real app on a host whose stores are private instances, stops
one of them for longer than the host's own retries last (visibilityTimeout x
maxDequeueCount), while events keep arriving, then starts it again: no
message may reach a poison queue, every accepted event is stored exactly
once, and the roll-up counts each exactly once. The retry delays are shortened
for the test (SINK_RETRY_DELAYS); the production schedule's arithmetic is
tested in tests/unit/test_delivery.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.data.tables import TableServiceClient

from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.services.rollup import run_rollup
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import (
    FUNCTION_KEY,
    fast_app_dir,
    host_environ,
    poisoned,
    rows,
    running_host,
)
from tests.integration.services import Stack, private_stack

# The host gives up on a message after 3 deliveries 1 s apart: an outage of
# OUTAGE seconds is several times longer than that.
HOST_QUEUES = {"visibilityTimeout": "00:00:01", "maxDequeueCount": 3}
OUTAGE = 8.0
BUCKET = 5  # roll-up bucket width of these tests (their private Redis only)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with private_stack() as running:
        yield running


def environ_for(test_run: TestRun, stack: Stack) -> dict[str, str]:
    return host_environ(
        test_run,
        POSTGRES_DSN=stack.dsn,
        REDIS_URL=stack.redis.url,
        AzureWebJobsStorage=stack.azurite.connection,
        ARCHIVE_STORAGE_CONNECTION=stack.azurite.connection,
        ROLLUP_BUCKET_SECONDS=str(BUCKET),
        SINK_RETRY_DELAYS="1,2",
        # A receive cut off by an outage strands its messages for a lease: keep it short.
        DEVHOST_MESSAGE_LEASE_SECONDS="15",
        POSTGRES_TIMEOUT_SECONDS="1",
    )


def batch() -> list[dict[str, Any]]:
    """Every event type, twice, each a new event."""
    return f.one_of_each() + f.one_of_each()


def post_until_accepted(http: httpx.Client, events: list[dict[str, Any]]) -> None:
    """Send as a client would: a 503 is retried (same event ids) until accepted."""
    deadline = time.monotonic() + 120
    while True:
        answer = http.post("v1/events", json={"events": events})
        if answer.status_code == 202:
            assert answer.json()["accepted"] == len(events)
            return
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"]
        assert time.monotonic() < deadline, "never accepted"
        time.sleep(0.5)


def archived_ids(stack: Stack, test_run: TestRun) -> list[str]:
    """The event ids of the archive's event entities (not the references)."""
    tables = TableServiceClient.from_connection_string(stack.azurite.connection)
    try:
        return [
            entity["event_id"]
            for table in tables.list_tables()
            if table.name.startswith(test_run.archive_table_prefix)
            for entity in tables.get_table_client(table.name).list_entities()
            if "ref_row" not in entity  # an event's own entity, not a reference to it
        ]
    finally:
        tables.close()


def wait_until_stored(
    stack: Stack, test_run: TestRun, events: list[dict[str, Any]], timeout: float
) -> None:
    """Until PostgreSQL's ledger and the archive hold every one of the events."""
    ids = [event["event_id"] for event in events]
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM event_ledger WHERE event_id = ANY(%s::uuid[])"
    while rows(stack.dsn, query, ids)[0][0] < len(ids) or len(
        set(archived_ids(stack, test_run)) & set(ids)
    ) < len(ids):
        assert time.monotonic() < deadline, "not every event reached the stores in time"
        time.sleep(1)


def assert_exactly_once(stack: Stack, test_run: TestRun, events: list[dict[str, Any]]) -> None:
    ids = [event["event_id"] for event in events]
    stored = rows(
        stack.dsn, "SELECT count(*) FROM event_ledger WHERE event_id = ANY(%s::uuid[])", ids
    )
    assert stored[0][0] == len(ids)
    assert rows(stack.dsn, "SELECT count(*) FROM event_ledger")[0][0] == len(ids)
    # The archive holds each event once as its actor's entity.
    assert sorted(archived_ids(stack, test_run)) == sorted(ids)
    # The roll-up counts every accepted event once.
    roll_up(stack, test_run)
    counted = rows(
        stack.dsn,
        "SELECT sum(value) FROM activity_rollups WHERE metric = 'events' AND bucket_seconds = %s",
        BUCKET,
    )
    assert counted[0][0] == len(ids)


def roll_up(stack: Stack, test_run: TestRun) -> None:
    """What the per-minute timer does: every bucket so far into PostgreSQL.

    Redis holds the counters between two roll-ups only (SPEC 4): an empty
    Redis after a restart has lost those, so the tests roll up before an outage.
    """
    views = RealtimeRepository(stack.redis.url, test_run.redis_prefix, BUCKET)
    with PostgresRepository(stack.dsn) as postgres:
        run_rollup(views, postgres, now=datetime.now(UTC) + timedelta(seconds=60))
    views.close()


def assert_no_poison(stack: Stack, environ: dict[str, str]) -> None:
    for queue in ("PERSIST_QUEUE", "ARCHIVE_QUEUE", "REALTIME_QUEUE"):
        assert poisoned(stack.azurite.connection, environ[queue]) == 0, queue


def health(http: httpx.Client) -> tuple[int, dict[str, Any]]:
    answer = http.get("v1/health")
    return answer.status_code, answer.json()


@pytest.mark.parametrize("dependency", ["postgres", "redis"])
def test_a_store_outage_while_events_flow_poisons_nothing_and_counts_everything_once(
    test_run: TestRun, scratch_dir: Path, stack: Stack, dependency: str
) -> None:
    environ = environ_for(test_run, stack)
    server = stack.postgres if dependency == "postgres" else stack.redis
    with (
        running_host(fast_app_dir(scratch_dir, **HOST_QUEUES), environ, timers=False) as host,
        httpx.Client(
            base_url=host.url(""), headers={"x-functions-key": FUNCTION_KEY}, timeout=30
        ) as http,
    ):
        before = batch()
        post_until_accepted(http, before)
        host.wait_idle(timeout=60)
        roll_up(stack, test_run)

        server.stop()
        status, body = health(http)
        # Events are still accepted and views still answer: degraded, not down.
        assert status == 200
        assert body["status"] == "degraded"
        assert body["dependencies"][dependency]["status"] == "down"
        assert body["poison_queues"] is not None
        during = []
        started = time.monotonic()
        while time.monotonic() - started < OUTAGE:  # the outage lasts while events flow
            events = batch()
            post_until_accepted(http, events)
            during += events
            time.sleep(1)
        server.start()  # Redis comes back empty, as after a restart

        host.wait_idle(timeout=120)
        assert_no_poison(stack, environ)
        status, body = health(http)
        assert (status, body["status"]) == (200, "ok")
        assert set(body["poison_queues"].values()) == {0}
    assert_exactly_once(stack, test_run, before + during)


def test_a_storage_outage_refuses_events_with_retry_after_and_loses_nothing(
    test_run: TestRun, scratch_dir: Path, stack: Stack
) -> None:
    environ = environ_for(test_run, stack)
    with (
        running_host(fast_app_dir(scratch_dir, **HOST_QUEUES), environ, timers=False) as host,
        httpx.Client(
            base_url=host.url(""), headers={"x-functions-key": FUNCTION_KEY}, timeout=30
        ) as http,
    ):
        before = batch()
        post_until_accepted(http, before)
        flowing = batch()  # accepted just before the outage: in flight when it starts
        post_until_accepted(http, flowing)

        stack.azurite.stop()
        refused = http.post("v1/events", json={"events": batch()})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        status, body = health(http)
        assert (status, body["status"]) == (503, "down")
        assert body["dependencies"]["queue"]["status"] == "down"
        deadline = time.monotonic() + OUTAGE
        while time.monotonic() < deadline:  # the outage lasts; clients keep retrying
            assert http.post("v1/events", json={"events": batch()}).status_code == 503
            time.sleep(1)
        stack.azurite.start()

        after = batch()
        post_until_accepted(http, after)
        # Not wait_idle: a receive cut off by the outage leaves its messages
        # invisible for the rest of their 10-minute lease (the service handed
        # them out, the answer never arrived), as it would under the real host;
        # they run later, harmlessly. What matters is that every event reaches
        # the stores, once: checked here and below.
        wait_until_stored(stack, test_run, before + flowing + after, timeout=120)
        assert_no_poison(stack, environ)
        assert health(http)[0] == 200
    assert_exactly_once(stack, test_run, before + flowing + after)
