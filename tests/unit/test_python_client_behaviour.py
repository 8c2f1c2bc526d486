"""activity_client.ActivityClient against an in-process fake server (httpx.MockTransport).

What the client does on its own: batching, retries with the same ids, final
answers, the bounded buffer, closing. tests/integration/test_python_client.py
checks the same against the real app.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from activity_client import ActivityClient, BatchResult, BufferFull, ClientClosed, EventTooLarge

Handler = Callable[[list[dict[str, Any]]], httpx.Response]


def accept_all(events: list[dict[str, Any]]) -> httpx.Response:
    ids = [e["event_id"] for e in events]
    return httpx.Response(202, json={"accepted": len(ids), "event_ids": ids, "rejected": []})


class FakeServer:
    """Records every request's events; answers with ``handler`` (default: 202 for all)."""

    def __init__(self, handler: Handler = accept_all) -> None:
        self.handler = handler
        self.requests: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        events = json.loads(request.content)["events"]
        with self.lock:
            self.requests.append(events)
        return self.handler(events)

    def ids(self) -> list[str]:
        with self.lock:
            return [e["event_id"] for batch in self.requests for e in batch]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def make_client(server: FakeServer, **options: Any) -> ActivityClient:
    settings: dict[str, Any] = {"retry_base": 0.01, "retry_max": 0.05, "flush_interval": 0.05}
    return ActivityClient("http://app", transport=server.transport(), **(settings | options))


@pytest.fixture
def results() -> list[BatchResult]:
    return []


def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def progress(n: int = 0) -> dict[str, Any]:
    return {
        "student_id": str(uuid.uuid4()),
        "lesson_id": str(uuid.uuid4()),
        "started_at": "2026-11-24T10:00:00Z",
        "progress_percent": n % 100,
        "video_watch_time": n,
        "sections_read": ["introduction"],
        "last_accessed_at": "2026-11-24T10:05:00Z",
    }


def test_events_go_in_batches_of_max_batch() -> None:
    server = FakeServer()
    with make_client(server, max_batch=100, flush_interval=30) as client:
        ids = [client.lesson_progress(**progress(n)) for n in range(250)]
        assert client.flush(timeout=5)
        assert client.pending() == 0
    assert [len(batch) for batch in server.requests] == [100, 100, 50]
    assert server.ids() == ids  # one sender: in order
    assert server.requests[0][0]["type"] == "lesson_progress"
    assert client.stats().accepted == 250


def test_a_partial_batch_leaves_after_flush_interval_without_a_flush() -> None:
    server = FakeServer()
    with make_client(server, flush_interval=0.2) as client:
        client.lesson_progress(**progress())
        until(lambda: len(server.requests) == 1)


def test_retries_resend_the_same_ids_after_retry_after(results: list[BatchResult]) -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0.3"}, json={"error": "queue down"}),
            httpx.Response(429, json={"error": "slow down"}),
            httpx.Response(500),
        ]
    )

    def flaky(events: list[dict[str, Any]]) -> httpx.Response:
        return next(answers, None) or accept_all(events)

    server = FakeServer(flaky)
    with make_client(server, on_result=results.append) as client:
        ids = [client.quiz_attempt(score=n) for n in range(5)]
        started = time.monotonic()
        assert client.flush(timeout=5)
        assert time.monotonic() - started >= 0.3  # Retry-After honoured
    assert [[e["event_id"] for e in batch] for batch in server.requests] == [ids] * 4
    assert len(results) == 1
    assert results[0].attempts == 4
    assert results[0].retries == {"503": 1, "429": 1, "5xx": 1}
    assert client.stats().retries == {"503": 1, "429": 1, "5xx": 1}


def test_connection_errors_are_retried() -> None:
    failures = iter([httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
    server = FakeServer()

    def handler(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return server(request)

    client = ActivityClient(
        "http://app", transport=httpx.MockTransport(handler), retry_base=0.01, retry_max=0.05
    )
    event_id = client.feedback(feedback_text="ok")
    assert client.close(timeout=5)
    assert server.ids() == [event_id]
    assert client.stats().retries == {"connection": 2}


def test_per_event_refusals_are_reported_not_retried(results: list[BatchResult]) -> None:
    def refuse_first(events: list[dict[str, Any]]) -> httpx.Response:
        errors = [{"field": "progress_percent", "message": "must be at most 100"}]
        return httpx.Response(
            202,
            json={
                "accepted": len(events) - 1,
                "event_ids": [e["event_id"] for e in events[1:]],
                "rejected": [{"index": 0, "errors": errors}],
            },
        )

    server = FakeServer(refuse_first)
    with make_client(server, on_result=results.append) as client:
        bad = client.lesson_progress(progress_percent=150)
        client.lesson_progress(progress_percent=50)
        assert client.flush(timeout=5)
    assert len(server.requests) == 1
    (rejection,) = client.rejections()
    assert rejection.event_id == bad
    assert rejection.event["progress_percent"] == 150
    assert rejection.status == 202
    assert [tuple(e) for e in rejection.errors] == [("progress_percent", "must be at most 100")]
    assert results[0].accepted == 1
    assert client.stats().rejected == 1


@pytest.mark.parametrize("status", [400, 401, 415, 422])
def test_final_answers_are_not_retried(status: int) -> None:
    def refuse(events: list[dict[str, Any]]) -> httpx.Response:
        if status == 422:
            errors = [{"field": "type", "message": "unknown"}]
            rejected = [{"index": i, "errors": errors} for i in range(len(events))]
            return httpx.Response(422, json={"accepted": 0, "event_ids": [], "rejected": rejected})
        return httpx.Response(status, json={"error": "no"})

    server = FakeServer(refuse)
    with make_client(server) as client:
        client.send({"type": "nonsense"})
        client.send({"type": "nonsense"})
        assert client.flush(timeout=5)
    assert len(server.requests) == 1
    assert client.stats().rejected == 2
    assert {r.status for r in client.rejections()} == {status}


def test_a_413_splits_the_batch_until_it_fits() -> None:
    def small_only(events: list[dict[str, Any]]) -> httpx.Response:
        if len(events) > 7:
            return httpx.Response(413, json={"error": "too large"})
        return accept_all(events)

    server = FakeServer(small_only)
    with make_client(server, max_batch=40, flush_interval=30) as client:
        ids = [client.content_activity(title=str(n)) for n in range(40)]
    accepted = [len(b) for b in server.requests if len(b) <= 7]
    assert sum(accepted) == 40
    assert [e["event_id"] for b in server.requests if len(b) <= 7 for e in b] == ids  # in order
    assert client.stats().splits == 7  # 40 -> 20+20 -> 10+10+10+10 -> 5 x 8


def stalled_server() -> tuple[FakeServer, threading.Event]:
    release = threading.Event()

    def stalled(events: list[dict[str, Any]]) -> httpx.Response:
        release.wait(10)
        return accept_all(events)

    return FakeServer(stalled), release


def test_a_full_buffer_raises_buffer_full_after_buffer_timeout() -> None:
    server, release = stalled_server()
    client = make_client(server, max_batch=2, max_buffer=4, buffer_timeout=0.2)
    try:
        for n in range(4):
            client.forum_activity(content=str(n))
        started = time.monotonic()
        with pytest.raises(BufferFull, match="max_buffer 4"):
            client.forum_activity(content="one too many")
        assert time.monotonic() - started >= 0.2
        assert client.pending() == 4
    finally:
        release.set()
        assert client.close(timeout=5)
    assert len(server.ids()) == 4  # the refused one was never buffered


def test_a_full_buffer_blocks_send_until_there_is_room() -> None:
    server, release = stalled_server()
    client = make_client(server, max_batch=2, max_buffer=4, buffer_timeout=10)
    try:
        for n in range(4):
            client.forum_activity(content=str(n))
        waiting = threading.Thread(target=client.forum_activity, kwargs={"content": "waits"})
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()  # blocked: the buffer is full
        release.set()
        waiting.join(5)
        assert not waiting.is_alive()
    finally:
        release.set()
        assert client.close(timeout=5)
    assert len(server.ids()) == 5


def test_max_attempts_gives_up_and_hands_back_the_events(results: list[BatchResult]) -> None:
    server = FakeServer(lambda events: httpx.Response(503, headers={"Retry-After": "0"}))
    with make_client(server, max_attempts=3, on_result=results.append) as client:
        event_id = client.feedback(feedback_text="kept")
        assert client.flush(timeout=5)
    assert len(server.requests) == 3
    (result,) = results
    assert result.status == 503
    assert not result.delivered
    assert result.error is not None
    assert "3 attempts" in result.error
    assert [e["event_id"] for e in result.undelivered] == [event_id]
    assert client.stats().undelivered == 1


def test_close_with_a_timeout_gives_up_on_a_dead_server(results: list[BatchResult]) -> None:
    server = FakeServer(lambda events: httpx.Response(503, headers={"Retry-After": "30"}))
    client = make_client(server, on_result=results.append)
    ids = [client.feedback(feedback_text=str(n)) for n in range(3)]
    started = time.monotonic()
    assert client.close(timeout=0.5) is False
    assert time.monotonic() - started < 3
    assert sorted(e["event_id"] for r in results for e in r.undelivered) == sorted(ids)
    assert client.pending() == 0
    with pytest.raises(ClientClosed):
        client.feedback(feedback_text="late")


def test_send_keeps_a_given_event_id_and_never_changes_the_callers_event() -> None:
    server = FakeServer()
    event = {"type": "feedback", "feedback_text": "x"}
    with make_client(server) as client:
        first = client.send(event)
        second = client.send(event)
        fixed = str(uuid.uuid4())
        assert client.send(event | {"event_id": fixed}) == fixed
        assert client.send(event | {"event_id": uuid.UUID(fixed)}) == fixed  # a UUID object
        fresh = client.send(event | {"event_id": None})  # None: make one
    assert event == {"type": "feedback", "feedback_text": "x"}
    assert first != second
    assert server.ids() == [first, second, fixed, fixed, fresh]
    assert uuid.UUID(fresh)


def test_malformed_events_fail_at_the_call() -> None:
    with make_client(FakeServer()) as client:
        with pytest.raises(ValueError, match="'type'"):
            client.send({"event_id": str(uuid.uuid4())})
        with pytest.raises(ValueError, match="UUID"):
            client.send({"type": "feedback", "event_id": "not-a-uuid"})
        with pytest.raises(TypeError, match="sets 'type'"):
            client.feedback(type="quiz_attempt")
        with pytest.raises(ValueError, match="JSON compliant"):
            client.quiz_attempt(score=float("inf"))
        with pytest.raises(EventTooLarge):
            client.forum_activity(content="x" * (1024 * 1024))
        assert client.pending() == 0


def test_many_threads_lose_nothing() -> None:
    server = FakeServer()
    ids: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [client.lesson_progress(**progress(n)) for n in range(300)]
        with lock:
            ids.extend(mine)

    with make_client(server, concurrency=4, max_buffer=500, buffer_timeout=None) as client:
        threads = [threading.Thread(target=worker) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(ids) == 3600
    assert sorted(server.ids()) == sorted(ids)
    assert all(len(batch) <= 100 for batch in server.requests)
    assert client.stats().accepted == 3600


EXIT_WITH_A_DEAD_SERVER = """
from activity_client import ActivityClient

client = ActivityClient("http://127.0.0.1:9", exit_timeout=0.5, retry_base=0.05)
client.feedback(feedback_text="nobody listens")
"""


def test_exit_waits_a_bounded_time_and_says_what_was_lost() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", EXIT_WITH_A_DEAD_SERVER],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    assert "1 events not delivered" in done.stderr
