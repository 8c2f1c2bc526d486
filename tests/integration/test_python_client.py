"""clients/python (activity_client) against the real app on the session host.

Failures are staged by a small HTTP proxy in front of the host (503 with
Retry-After, 429, a dropped connection, a lower body limit answering 413);
what was stored is read from event_ledger once the host is idle.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from activity_client import ActivityClient, BatchResult

from devhost import DevHost
from tests import factories as f
from tests.conftest import TestRun
from tests.integration.conftest import FUNCTION_KEY, ROOT, rows

FAST = {"retry_base": 0.05, "retry_max": 0.5}


# --- helpers ----------------------------------------------------------------------------


def stored(dsn: str, ids: list[str]) -> dict[str, int]:
    """event_ledger rows per event id (every id present, 0 when missing)."""
    counts = dict.fromkeys(ids, 0)
    found = rows(
        dsn,
        "SELECT event_id::text, count(*) FROM event_ledger WHERE event_id = ANY(%s::uuid[]) "
        "GROUP BY event_id",
        ids,
    )
    counts.update(dict(found))
    return counts


def assert_stored_once(host: DevHost, test_run: TestRun, ids: list[str]) -> None:
    host.wait_idle(timeout=120)
    counts = stored(test_run.postgres_dsn, ids)
    missing = [i for i, n in counts.items() if n == 0]
    doubled = [i for i, n in counts.items() if n > 1]
    assert not missing, f"{len(missing)} of {len(ids)} events not stored"
    assert not doubled, f"{len(doubled)} events stored twice"


def fields(event: dict[str, Any]) -> dict[str, Any]:
    """An event's fields without type and event_id: what the typed methods take."""
    return {k: v for k, v in event.items() if k not in ("type", "event_id")}


class Counting(httpx.BaseTransport):
    """A real transport that counts the POSTs it carries and keeps their event ids."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            ids = [e["event_id"] for e in json.loads(request.read())["events"]]
            with self.lock:
                self.batches.append(ids)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Seen:
    """One request as the proxy saw it."""

    at: float  # time.monotonic()
    event_ids: list[str]
    size: int  # body bytes
    action: str


# What the proxy does with request number n (0, 1, ...) given its body:
# "forward", "forward-503" (forward, but answer 503 as if the answer was lost),
# "503", "429", "413" or "drop" (close the connection without an answer).
Policy = Callable[[int, bytes], str]


class Proxy:
    """An HTTP proxy in front of the host, answering as ``policy`` says."""

    def __init__(self, upstream: str, policy: Policy) -> None:
        self.upstream = httpx.Client(base_url=upstream, timeout=30)
        self.policy = policy
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    action = proxy.policy(len(proxy.seen), body)
                    ids = [e.get("event_id") for e in json.loads(body).get("events", [])]
                    proxy.seen.append(Seen(time.monotonic(), ids, len(body), action))
                if action == "drop":
                    self.close_connection = True
                    return
                if action in ("forward", "forward-503"):
                    headers = {
                        name: self.headers[name]
                        for name in ("Content-Type", "x-functions-key")
                        if self.headers.get(name)
                    }
                    answer = proxy.upstream.post(self.path, content=body, headers=headers)
                    if action == "forward":
                        self.reply(answer.status_code, answer.content)
                        return
                    assert answer.status_code == 202, answer.text
                status = 503 if action == "forward-503" else int(action)
                self.reply(status, json.dumps({"error": f"staged {status}"}).encode())

            def reply(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                if status in (429, 503):
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.upstream.close()


def scripted(*first: str) -> Policy:
    """The first requests as listed, then forward everything."""
    return lambda n, body: first[n] if n < len(first) else "forward"


@pytest.fixture
def proxy_for(host: DevHost) -> Iterator[Callable[[Policy], Proxy]]:
    proxies: list[Proxy] = []

    def start(policy: Policy) -> Proxy:
        proxy = Proxy(host.base_url, policy).__enter__()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.__exit__()


# --- batching ----------------------------------------------------------------------------


def test_n_events_go_in_ceil_n_over_max_batch_requests_and_all_are_stored(
    host: DevHost, test_run: TestRun
) -> None:
    counting = Counting()
    results: list[BatchResult] = []
    n, max_batch = 230, 50
    client = ActivityClient(
        host.base_url,
        key=FUNCTION_KEY,
        max_batch=max_batch,
        flush_interval=60,  # only full batches leave before close()
        transport=counting,
        on_result=results.append,
    )
    makers = [client.lesson_progress, client.quiz_attempt, client.forum_activity]
    factories = [f.lesson_progress, f.quiz_attempt, f.forum_activity]
    ids = [makers[i % 3](**fields(factories[i % 3]())) for i in range(n)]
    assert client.close(timeout=60)  # sends the last, partial batch
    assert len(counting.batches) == math.ceil(n / max_batch)
    assert sorted(len(batch) for batch in counting.batches) == [30, 50, 50, 50, 50]
    assert [i for batch in counting.batches for i in batch] == ids
    assert sum(r.accepted for r in results) == n
    assert client.pending() == 0
    assert_stored_once(host, test_run, ids)


def test_a_partial_batch_leaves_after_flush_interval(host: DevHost, test_run: TestRun) -> None:
    counting = Counting()
    with ActivityClient(
        host.base_url, key=FUNCTION_KEY, flush_interval=0.3, transport=counting
    ) as client:
        event_id = client.feedback(**fields(f.feedback()))
        deadline = time.monotonic() + 10
        while client.pending():
            assert time.monotonic() < deadline, "the partial batch never left"
            time.sleep(0.02)
        assert counting.batches == [[event_id]]
    assert_stored_once(host, test_run, [event_id])


# --- retries ------------------------------------------------------------------------------


def test_503_is_retried_after_retry_after_with_the_same_ids_and_stored_once(
    proxy_for: Callable[[Policy], Proxy], host: DevHost, test_run: TestRun
) -> None:
    # The first 503 comes after the app took the batch (an answer lost on the
    # way back): the retry re-sends events the app already has.
    proxy = proxy_for(scripted("forward-503", "503"))
    results: list[BatchResult] = []
    with ActivityClient(proxy.url, key=FUNCTION_KEY, on_result=results.append, **FAST) as client:
        ids = [client.send(f.one_of_each()[i % 6] | {"event_id": None}) for i in range(12)]
        assert client.flush(timeout=30)
    assert [s.action for s in proxy.seen] == ["forward-503", "503", "forward"]
    assert [s.event_ids for s in proxy.seen] == [ids, ids, ids]
    gaps = [
        later.at - earlier.at for earlier, later in zip(proxy.seen, proxy.seen[1:], strict=False)
    ]
    assert all(gap >= 1.0 for gap in gaps), gaps  # Retry-After: 1 honoured
    assert len(results) == 1
    assert results[0].status == 202
    assert results[0].accepted == 12
    assert results[0].retries == {"503": 2}
    assert_stored_once(host, test_run, ids)


def test_429_and_a_dropped_connection_are_retried(
    proxy_for: Callable[[Policy], Proxy], host: DevHost, test_run: TestRun
) -> None:
    proxy = proxy_for(scripted("429", "drop"))
    with ActivityClient(proxy.url, key=FUNCTION_KEY, **FAST) as client:
        ids = [client.content_activity(**fields(f.content_activity())) for _ in range(5)]
        assert client.flush(timeout=30)
        assert client.stats().retries == {"429": 1, "connection": 1}
    assert [s.action for s in proxy.seen] == ["429", "drop", "forward"]
    assert all(s.event_ids == ids for s in proxy.seen)
    assert proxy.seen[1].at - proxy.seen[0].at >= 1.0  # the 429's Retry-After
    assert_stored_once(host, test_run, ids)


def test_an_unreachable_app_is_retried_until_it_answers(host: DevHost, test_run: TestRun) -> None:
    # Connection refused twice (port 9, where nothing listens), then the host.
    attempts: list[str] = []
    real = httpx.HTTPTransport()
    dead = httpx.HTTPTransport()

    class FlakyNetwork(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if len(attempts) < 2:
                attempts.append("refused")
                dead_url = request.url.copy_with(host="127.0.0.1", port=9)  # discard: closed
                return dead.handle_request(httpx.Request("POST", dead_url, content=b"{}"))
            attempts.append("sent")
            return real.handle_request(request)

    with ActivityClient(
        host.base_url, key=FUNCTION_KEY, transport=FlakyNetwork(), **FAST
    ) as client:
        event_id = client.live_class_engagement(**fields(f.live_class_engagement()))
        assert client.flush(timeout=30)
        assert client.stats().retries == {"connection": 2}
    assert attempts == ["refused", "refused", "sent"]
    assert_stored_once(host, test_run, [event_id])


# --- final answers ------------------------------------------------------------------------


def test_a_422_is_reported_with_its_fields_and_not_retried(
    proxy_for: Callable[[Policy], Proxy],
) -> None:
    proxy = proxy_for(scripted())
    results: list[BatchResult] = []
    with ActivityClient(proxy.url, key=FUNCTION_KEY, on_result=results.append, **FAST) as client:
        bad = client.lesson_progress(**fields(f.lesson_progress(progress_percent=150)))
        also_bad = client.send({"type": "homework_done", "student_id": f.new_id()})
        assert client.flush(timeout=30)
    assert len(proxy.seen) == 1
    (result,) = results
    assert result.status == 422
    assert result.accepted == 0
    refused = {r.event_id: r for r in client.rejections()}
    assert set(refused) == {bad, also_bad}
    assert [e.field for e in refused[bad].errors] == ["progress_percent"]
    assert refused[bad].errors[0].message
    assert refused[bad].event["progress_percent"] == 150
    assert [e.field for e in refused[also_bad].errors] == ["type"]
    assert client.stats().rejected == 2


def test_a_mixed_batch_stores_the_valid_and_reports_the_invalid(
    host: DevHost, test_run: TestRun
) -> None:
    with ActivityClient(host.base_url, key=FUNCTION_KEY) as client:
        good = client.quiz_attempt(**fields(f.quiz_attempt()))
        bad = client.quiz_attempt(**fields(f.quiz_attempt(attempt_number=0)))
        assert client.flush(timeout=30)
    (rejection,) = client.rejections()
    assert rejection.event_id == bad
    assert rejection.status == 202
    assert [e.field for e in rejection.errors] == ["attempt_number"]
    assert_stored_once(host, test_run, [good])
    assert stored(test_run.postgres_dsn, [bad]) == {bad: 0}


def test_a_413_splits_the_batch_until_it_fits(
    proxy_for: Callable[[Policy], Proxy], host: DevHost, test_run: TestRun
) -> None:
    limit = 8 * 1024  # a gateway in front with a smaller body limit than the app's

    def small_bodies_only(n: int, body: bytes) -> str:
        return "413" if len(body) > limit else "forward"

    proxy = proxy_for(small_bodies_only)
    essay = "Here's how I'd approach it: break it into smaller steps. " * 8  # ~450 bytes
    with ActivityClient(proxy.url, key=FUNCTION_KEY, max_batch=64, flush_interval=60) as client:
        ids = [client.forum_activity(**fields(f.forum_activity(content=essay))) for _ in range(64)]
        assert client.flush(timeout=60)
        assert client.stats().splits >= 3
    forwarded = [s for s in proxy.seen if s.action == "forward"]
    assert all(s.size <= limit for s in forwarded)
    assert [i for s in forwarded for i in s.event_ids] == ids  # each once, in order
    assert proxy.seen[0].action == "413"
    assert_stored_once(host, test_run, ids)


# --- many threads, and exit ------------------------------------------------------------------


def test_many_threads_sending_at_once_lose_nothing(host: DevHost, test_run: TestRun) -> None:
    threads_n, per_thread = 8, 150
    sent: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_n)
    with ActivityClient(
        host.base_url, key=FUNCTION_KEY, concurrency=4, max_buffer=400, buffer_timeout=None
    ) as client:

        def worker(n: int) -> None:
            makers = [client.lesson_progress, client.forum_activity, client.feedback]
            factories = [f.lesson_progress, f.forum_activity, f.feedback]
            events = [factories[(n + i) % 3]() for i in range(per_thread)]
            start.wait()
            mine = [makers[(n + i) % 3](**fields(e)) for i, e in enumerate(events)]
            with lock:
                sent.extend(mine)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert client.flush(timeout=120)
        stats = client.stats()
    assert len(set(sent)) == threads_n * per_thread
    assert stats.accepted == threads_n * per_thread
    assert stats.rejected == stats.undelivered == 0
    assert_stored_once(host, test_run, sent)


EXITING_PROGRAM = textwrap.dedent(
    """
    import json, sys
    from activity_client import ActivityClient
    from tests import factories as f

    client = ActivityClient(sys.argv[1], key=sys.argv[2], flush_interval=3600)
    ids = [client.quiz_attempt(**{k: v for k, v in f.quiz_attempt().items()
                                  if k not in ("type", "event_id")}) for _ in range(25)]
    print(json.dumps({"ids": ids, "pending": client.pending()}))
    # No flush(), no close(): the interpreter exits with the events buffered.
    """
)


def test_events_buffered_at_exit_are_delivered(host: DevHost, test_run: TestRun) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EXITING_PROGRAM, host.base_url, FUNCTION_KEY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    output = json.loads(done.stdout)
    assert output["pending"] == 25  # nothing had left before exit
    assert_stored_once(host, test_run, output["ids"])


# --- make simulate ---------------------------------------------------------------------------


def simulate(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.simulate", *args],
        cwd=ROOT,  # scripts is a package of the repository root
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_simulate_sends_the_stream_through_the_client(
    host: DevHost, test_run: TestRun, tmp_path: Path
) -> None:
    dump = tmp_path / "events.jsonl"
    done = simulate(
        "--url", host.base_url, "--key", FUNCTION_KEY, "--events", "600", "--batch", "50",
        "--concurrency", "4", "--duplicates", "0.1", "--seed", "7", "--no-progress",
        "--dump", str(dump),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sent = [json.loads(line)["event_id"] for line in dump.read_text().splitlines()]
    assert len(sent) == 660
    assert len(set(sent)) == 600  # the 60 re-sends carry the same event ids
    assert "events sent     660" in done.stdout
    assert "duplicates sent 60" in done.stdout
    assert "accepted        660" in done.stdout
    assert "rejected        0" in done.stdout
    assert_stored_once(host, test_run, sorted(set(sent)))


def test_simulate_live_runs_a_class_and_says_what_to_open(host: DevHost, test_run: TestRun) -> None:
    done = simulate(
        "--live", "--minutes", "0.3", "--url", host.base_url, "--key", FUNCTION_KEY, "--seed", "5"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    base = f"{host.base_url}/api/dashboard"
    for page in ("lessons", "quizzes", "live", "teachers", "students"):
        assert f"{base}/{page}/" in out
    assert f"{host.base_url}/.auth/login/dev" in out
    teacher = out.split("  Teacher  ", 1)[1].split()[0]
    session = out.split(f"{base}/live/", 1)[1].split()[0]
    lesson = out.split(f"{base}/lessons/", 1)[1].split()[0]
    assert "rejected        0" in out
    host.wait_idle(timeout=120)
    (live_row,) = rows(
        test_run.postgres_dsn,
        "SELECT teacher_id::text, left_at IS NOT NULL, duration_seconds "
        "FROM live_class_engagement WHERE session_id = %s",
        session,
    )
    assert live_row[0] == teacher
    assert live_row[1]  # the session ended when the run did
    assert 10 <= live_row[2] <= 40
    (students,) = rows(
        test_run.postgres_dsn,
        "SELECT count(DISTINCT student_id) FROM lesson_progress_events WHERE lesson_id = %s",
        lesson,
    )
    assert students[0] >= 5  # the first few are there within seconds
