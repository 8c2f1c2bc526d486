"""End to end: HTTP -> queues -> PostgreSQL, Azure Tables and Redis, through the
real function_app.py on the local host, against real services."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.queue import QueueClient

from devhost import DevHost
from shared import limits
from shared.models.events import event_adapter
from shared.repositories.archive import ArchiveRepository
from shared.repositories.postgres import PostgresRepository
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import fast_app_dir, host_environ, poisoned, rows, running_host

HISTORY_TABLE = {
    "lesson_progress": "lesson_progress_events",
    "quiz_attempt": "quiz_attempts",
    "forum_activity": "forum_activity",
    "content_activity": "content_activity",
    "feedback": "feedback",
    "live_class_engagement": None,  # merged per (session_id, teacher_id)
}


def stored_copies(dsn: str, event: dict[str, Any]) -> tuple[int, int]:
    """(ledger rows, type-table rows) for one event id."""
    ledger = rows(dsn, "SELECT count(*) FROM event_ledger WHERE event_id = %s", event["event_id"])
    table = HISTORY_TABLE[event["type"]]
    if table is None:
        typed = rows(
            dsn,
            "SELECT count(*) FROM live_class_engagement WHERE session_id = %s AND teacher_id = %s",
            event["session_id"],
            event["teacher_id"],
        )
    else:
        typed = rows(dsn, f"SELECT count(*) FROM {table} WHERE event_id = %s", event["event_id"])
    return ledger[0][0], typed[0][0]


def archived_copies(archive: ArchiveRepository, event: dict[str, Any]) -> int:
    actor = event_adapter.validate_python(event).actor_id
    return sum(
        1
        for record in archive.read_user(actor)
        if record["event_id"] == event["event_id"] and record["role"] == "actor"
    )


def post(client: httpx.Client, document: Any, **kwargs: Any) -> httpx.Response:
    return client.post("v1/events", json=document, **kwargs)


def test_every_type_reaches_postgres_and_the_archive_once(
    client: httpx.Client, host: DevHost, test_run: TestRun, archive: ArchiveRepository
) -> None:
    events = f.one_of_each()
    response = post(client, {"events": events})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {
        "accepted": 6,
        "event_ids": [e["event_id"] for e in events],
        "rejected": [],
    }
    host.wait_idle(timeout=60)
    for event in events:
        assert stored_copies(test_run.postgres_dsn, event) == (1, 1), event["type"]
        assert archived_copies(archive, event) == 1, event["type"]
    # The archive holds the full event, field for field.
    feedback = events[4]
    record = next(
        r
        for r in archive.read_user(feedback["teacher_id"])
        if r["event_id"] == feedback["event_id"]
    )
    assert record["event"]["feedback_text"] == feedback["feedback_text"]
    assert record["event"]["submission_id"] == feedback["submission_id"]


def test_single_event_body_is_accepted(
    client: httpx.Client, host: DevHost, test_run: TestRun
) -> None:
    event = f.content_activity(action="updated", changes_summary="Fixed a typo")
    response = post(client, event)
    assert response.status_code == 202
    assert response.json()["event_ids"] == [event["event_id"]]
    host.wait_idle(timeout=60)
    assert stored_copies(test_run.postgres_dsn, event) == (1, 1)


def test_duplicates_in_a_batch_and_across_requests_store_once(
    client: httpx.Client, host: DevHost, test_run: TestRun, archive: ArchiveRepository
) -> None:
    event = f.forum_activity()
    assert post(client, {"events": [event, event]}).status_code == 202
    assert post(client, {"events": [event]}).status_code == 202
    host.wait_idle(timeout=60)
    assert stored_copies(test_run.postgres_dsn, event) == (1, 1)
    assert archived_copies(archive, event) == 1


def test_events_without_ids_get_the_same_id_on_retry(
    client: httpx.Client, host: DevHost, test_run: TestRun
) -> None:
    event = f.feedback()
    del event["event_id"]
    first = post(client, event).json()["event_ids"]
    again = post(client, event).json()["event_ids"]
    assert first == again
    host.wait_idle(timeout=60)
    assert stored_copies(test_run.postgres_dsn, event | {"event_id": first[0]}) == (1, 1)


def test_queue_redelivery_changes_nothing(
    client: httpx.Client, host: DevHost, test_run: TestRun, archive: ArchiveRepository
) -> None:
    event = f.lesson_progress()
    assert post(client, event).status_code == 202
    host.wait_idle(timeout=60)
    # Redeliver the same message body to every sink, as the queue would after a
    # lost acknowledgement, and run the functions on it again.
    envelope = json.dumps(
        {"v": 1, "received_at": f.ago(seconds=5), "events": [event]}, separators=(",", ":")
    )
    for queue in (test_run.persist_queue, test_run.archive_queue, test_run.realtime_queue):
        QueueClient.from_connection_string(test_run.storage_connection, queue).send_message(
            base64.b64encode(envelope.encode()).decode()
        )
    host.wait_idle(timeout=60)
    assert stored_copies(test_run.postgres_dsn, event) == (1, 1)
    assert archived_copies(archive, event) == 1


def test_out_of_order_lesson_progress_merges_to_the_same_state(
    client: httpx.Client, host: DevHost, test_run: TestRun, postgres: PostgresRepository
) -> None:
    student, lesson = f.new_id(), f.new_id()
    updates = [
        f.lesson_progress(
            student_id=student,
            lesson_id=lesson,
            started_at="2026-11-01T09:00:00Z",
            progress_percent=30.0,
            video_watch_time=100,
            sections_read=["intro"],
            last_accessed_at="2026-11-01T09:10:00Z",
        ),
        f.lesson_progress(
            student_id=student,
            lesson_id=lesson,
            started_at="2026-11-01T08:55:00Z",
            progress_percent=70.0,
            video_watch_time=400,
            sections_read=["intro", "practice"],
            last_accessed_at="2026-11-01T10:00:00Z",
        ),
        f.lesson_progress(
            student_id=student,
            lesson_id=lesson,
            started_at="2026-11-01T09:00:00Z",
            completed_at="2026-11-01T11:00:00Z",
            progress_percent=100.0,
            video_watch_time=350,
            sections_read=["summary"],
            last_accessed_at="2026-11-01T11:00:00Z",
        ),
    ]
    # Newest first, one request each: the opposite of the order they happened.
    for update in reversed(updates):
        assert post(client, update).status_code == 202
    host.wait_idle(timeout=60)
    (state,) = postgres.lesson_progress_for_student(student)  # type: ignore[arg-type]
    assert state["started_at"].isoformat() == "2026-11-01T08:55:00+00:00"
    assert state["completed_at"].isoformat() == "2026-11-01T11:00:00+00:00"
    assert state["progress_percent"] == 100.0
    assert state["video_watch_time"] == 400
    assert sorted(state["sections_read"]) == ["intro", "practice", "summary"]
    assert state["last_accessed_at"].isoformat() == "2026-11-01T11:00:00+00:00"
    history = rows(
        test_run.postgres_dsn,
        "SELECT count(*) FROM lesson_progress_events WHERE student_id = %s",
        student,
    )
    assert history[0][0] == 3


def test_a_bad_event_beside_good_ones(
    client: httpx.Client, host: DevHost, test_run: TestRun
) -> None:
    good = [f.quiz_attempt(), f.live_class_engagement()]
    bad = f.quiz_attempt(attempt_number=0)
    response = post(client, {"events": [good[0], bad, good[1]]})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert body["event_ids"] == [good[0]["event_id"], good[1]["event_id"]]
    assert body["rejected"] == [
        {
            "index": 1,
            "errors": [
                {"field": "attempt_number", "message": "Input should be greater than or equal to 1"}
            ],
        }
    ]
    host.wait_idle(timeout=60)
    for event in good:
        assert stored_copies(test_run.postgres_dsn, event) == (1, 1)
    assert stored_copies(test_run.postgres_dsn, bad)[0] == 0


def test_no_valid_event_is_422(client: httpx.Client) -> None:
    response = post(client, {"events": [f.feedback(score=-1)]})
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 0
    assert body["rejected"][0]["errors"][0]["field"] == "score"


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{nope", {"Content-Type": "application/json"}, 400),
        (b"[]", {"Content-Type": "application/json"}, 400),
        (b'{"events": {}}', {"Content-Type": "application/json"}, 400),
        (b"\xff\xfe\x00", {"Content-Type": "application/json"}, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"x" * (limits.MAX_REQUEST_BYTES + 10), {"Content-Type": "application/json"}, 413),
        (
            json.dumps({"events": [f.feedback()] * (limits.MAX_EVENTS_PER_REQUEST + 1)}).encode(),
            {"Content-Type": "application/json"},
            413,
        ),
    ],
    ids=["not-json", "array", "events-not-list", "bad-utf8", "text-plain", "over-1mib", "over-500"],
)
def test_malformed_bodies(
    client: httpx.Client, content: bytes, headers: dict[str, str], status: int
) -> None:
    response = client.post("v1/events", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]


def test_an_event_too_big_for_one_message_travels_by_claim_check(
    client: httpx.Client, host: DevHost, test_run: TestRun, archive: ArchiveRepository
) -> None:
    huge = f.forum_activity(content="字" * limits.MAX_CONTENT_CHARS)
    response = post(client, {"events": [huge, f.forum_activity()]})
    assert response.status_code == 202
    host.wait_idle(timeout=60)
    assert stored_copies(test_run.postgres_dsn, huge) == (1, 1)
    stored = rows(
        test_run.postgres_dsn,
        "SELECT content FROM forum_activity WHERE event_id = %s",
        huge["event_id"],
    )
    assert stored[0][0] == huge["content"]
    (record,) = [r for r in archive.read_user(huge["user_id"]) if r["role"] == "actor"]
    assert record["event"]["content"] == huge["content"]


def test_function_keys_are_enforced(host: DevHost) -> None:
    url = host.url("v1/events")
    event = f.feedback()
    assert httpx.post(url, json=event).status_code == 401
    assert httpx.post(url, json=event, headers={"x-functions-key": "wrong"}).status_code == 401
    assert httpx.post(url, json=event, params={"code": "test-master-key"}).status_code == 202
    assert httpx.get(host.url("v1/health")).status_code in (200, 503)  # anonymous


def test_health_and_openapi(host: DevHost) -> None:
    health = httpx.get(host.url("v1/health"))
    assert health.status_code == 200, health.text
    assert {name: d["status"] for name, d in health.json()["dependencies"].items()} == {
        "postgres": "up",
        "redis": "up",
        "queue": "up",
        "archive": "up",
    }
    document = httpx.get(host.url("v1/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert "/api/v1/events" in document["paths"]
    assert document["info"]["x-limits"]["max_events_per_request"] == limits.MAX_EVENTS_PER_REQUEST


def test_postgres_down_waits_while_the_archive_carries_on(
    test_run: TestRun, scratch_dir: Path, archive: ArchiveRepository
) -> None:
    """A sink that is down: its messages wait and retry (never poisoned) while the
    other sinks carry on; once it is back, every event is stored once."""
    app_dir = fast_app_dir(scratch_dir)  # the host alone would poison in ~1 s
    persist_queue = f"t{test_run.run_id}-down-persist"
    environ = host_environ(
        test_run,
        PERSIST_QUEUE=persist_queue,
        POSTGRES_DSN="postgresql://postgres@127.0.0.1:1/nowhere",
        POSTGRES_TIMEOUT_SECONDS="1",
        SINK_RETRY_DELAYS="1",
        # A message this host holds when it stops comes back when its lease ends: soon.
        DEVHOST_MESSAGE_LEASE_SECONDS="15",
    )
    events = [f.quiz_attempt() for _ in range(3)]
    with running_host(app_dir, environ) as down:
        http = httpx.Client(headers={"x-functions-key": "test-function-key"}, timeout=30)
        response = http.post(down.url("v1/events"), json={"events": events})
        assert response.status_code == 202  # ingest never depends on PostgreSQL
        # The archive did not wait for PostgreSQL.
        deadline = time.monotonic() + 60
        while not all(archived_copies(archive, event) == 1 for event in events):
            assert time.monotonic() < deadline, "the archive waited for PostgreSQL"
            time.sleep(0.2)
        time.sleep(4)  # several of the host's own retry cycles: none may poison
    assert poisoned(test_run.storage_connection, persist_queue) == 0
    for event in events:
        assert stored_copies(test_run.postgres_dsn, event) == (0, 0)

    with running_host(app_dir, host_environ(test_run, PERSIST_QUEUE=persist_queue)) as up:
        up.wait_idle(timeout=60)
    for event in events:
        assert stored_copies(test_run.postgres_dsn, event) == (1, 1)
    assert poisoned(test_run.storage_connection, persist_queue) == 0


def test_queue_down_answers_503_and_accepts_nothing(test_run: TestRun, scratch_dir: Path) -> None:
    environ = host_environ(
        test_run,
        AzureWebJobsStorage=(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;"
            "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
        ),
    )
    with running_host(fast_app_dir(scratch_dir), environ, queues=False, timers=False) as down:
        response = httpx.post(
            down.url("v1/events"),
            json=f.feedback(),
            headers={"x-functions-key": "test-function-key"},
            timeout=60,
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "nothing was accepted" in response.json()["error"]


def test_replaying_a_queue_that_never_had_poison_moves_nothing(test_run: TestRun) -> None:
    from shared.repositories.queue import replay_poison

    assert replay_poison(test_run.storage_connection, f"t{test_run.run_id}-never-failed") == 0
