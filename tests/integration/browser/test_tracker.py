"""The browser tracker (SPEC 12) in Chromium against the session host.

Each test opens a fixture page on the host's origin (answered by a route, so it
does not depend on the dashboard pages), imports the tracker the app serves at
/api/dashboard/assets/tracker.js, sends lesson_progress events with the
function key, and checks what reached the network (requests seen or
intercepted by Playwright) and what the app stored (event_ledger and
lesson_progress_events). Failures are injected with routes; nothing sleeps a
fixed time: every wait is for a condition, with a timeout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from itertools import pairwise
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Route

from devhost import DevHost
from tests.conftest import TestRun
from tests.integration.conftest import FUNCTION_KEY, rows

pytestmark = pytest.mark.services

EVENTS = "**/api/v1/events"
FIXTURE = "tracker-fixture"
FIXTURE_HTML = "<!doctype html><html lang='en'><title>tracker</title><body>tracker</body></html>"
TRACKER = "/api/dashboard/assets/tracker.js"

# Imports the tracker, creates one as window.tracker with the function key,
# records its results in window.results, and defines window.send(n, student):
# n valid lesson_progress events (invalid ones when asked, with `sections`
# sections of 200 characters read when asked), their ids returned.
SETUP = """async ([url, options, key]) => {
  const { createTracker } = await import(url);
  window.results = [];
  window.tracker = createTracker({ ...options, headers: { "x-functions-key": key } });
  window.tracker.onResult((result) => window.results.push(result));
  window.send = (n, student, invalid = false, sections = 1) => {
    const now = new Date().toISOString();
    const ids = [];
    for (let i = 0; i < n; i++) {
      ids.push(window.tracker.lessonProgress({
        student_id: student,
        lesson_id: crypto.randomUUID(),
        started_at: now,
        progress_percent: invalid ? 150 : i % 101,
        video_watch_time: i,
        sections_read: Array.from({ length: sections }, (_, s) => `${s}`.padEnd(200, "x")),
        last_accessed_at: now,
      }));
    }
    return ids;
  };
}"""


@dataclass
class Posts:
    """The POSTs to the events endpoint a page (or context) made: time and event ids."""

    seen: list[tuple[float, list[str]]] = field(default_factory=list)

    def record(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/events"):
            self.seen.append((time.monotonic(), event_ids(request)))

    def carrying(self, ids: list[str]) -> list[list[str]]:
        wanted = set(ids)
        return [sent for _, sent in self.seen if wanted & set(sent)]


def event_ids(request: Request) -> list[str]:
    body = request.post_data_json
    return [event["event_id"] for event in body["events"]]


@pytest.fixture
def fixture_page(host: DevHost, context: BrowserContext) -> str:
    """The fixture page's URL on the host's origin (served by a route in every tab)."""
    url = host.url(FIXTURE)
    context.route(url, lambda route: route.fulfill(content_type="text/html", body=FIXTURE_HTML))
    return url


@pytest.fixture
def student() -> str:
    return str(uuid.uuid4())


def open_tracker(page: Page, url: str, **options: Any) -> None:
    if page.url != url:
        page.goto(url)
    page.evaluate(SETUP, [TRACKER, options, FUNCTION_KEY])


def send(
    page: Page, n: int, student: str, *, invalid: bool = False, sections: int = 1
) -> list[str]:
    ids: list[str] = page.evaluate(
        "([n, s, bad, sections]) => window.send(n, s, bad, sections)",
        [n, student, invalid, sections],
    )
    return ids


def wait_sent(page: Page, timeout: float = 15_000) -> None:
    """Until the tracker holds nothing unanswered."""
    page.wait_for_function("window.tracker.pending() === 0", timeout=timeout)


def copies(test_run: TestRun, ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per event id: rows in event_ledger and in lesson_progress_events."""
    found = rows(
        test_run.postgres_dsn,
        """SELECT id::text,
                  (SELECT count(*) FROM event_ledger l WHERE l.event_id = id),
                  (SELECT count(*) FROM lesson_progress_events e WHERE e.event_id = id)
           FROM unnest(%s::uuid[]) AS id""",
        ids,
    )
    return {row[0]: (row[1], row[2]) for row in found}


def assert_stored_once(host: DevHost, test_run: TestRun, ids: list[str]) -> None:
    """Every id stored exactly once, waiting (with a deadline) for requests still arriving."""
    deadline = time.monotonic() + 20
    while True:
        host.wait_idle()
        stored = copies(test_run, ids)
        if all(count == (1, 1) for count in stored.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stored == dict.fromkeys(ids, (1, 1))


def results(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("window.results")
    return found


def fail_first(answers: list[Callable[[Route], None]], posts: Posts) -> Callable[[Route], None]:
    """A route handler: the n-th POST gets answers[n], the rest reach the app."""

    def handle(route: Route) -> None:
        posts.record(route.request)
        index = len(posts.seen) - 1
        if index < len(answers):
            answers[index](route)
        else:
            route.continue_()

    return handle


def answer(status: int, **headers: str) -> Callable[[Route], None]:
    return lambda route: route.fulfill(status=status, headers=headers, json={"error": "injected"})


@pytest.fixture
def posts(page: Page) -> Posts:
    seen = Posts()
    page.on("request", seen.record)
    return seen


# --- batching -------------------------------------------------------------------------


def test_250_events_go_in_3_requests_and_are_all_stored(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, posts: Posts, student: str
) -> None:
    open_tracker(page, fixture_page)
    started = time.monotonic()
    ids = send(page, 250, student)
    wait_sent(page)

    assert [len(sent) for _, sent in posts.seen] == [100, 100, 50]
    assert sorted(i for _, sent in posts.seen for i in sent) == sorted(ids)
    # A full batch goes at once; the last one not before flushInterval (1 s).
    assert posts.seen[0][0] - started < 0.9
    assert posts.seen[2][0] - started >= 0.9
    assert [r["accepted"] for r in results(page)] == [100, 100, 50]
    assert len(set(ids)) == 250
    assert_stored_once(host, test_run, ids)


def test_flush_sends_at_once_and_resolves_when_empty(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, posts: Posts, student: str
) -> None:
    open_tracker(page, fixture_page, flushInterval=60_000)
    ids = send(page, 3, student)
    assert page.evaluate("window.tracker.pending()") == 3
    assert page.evaluate("window.tracker.flush()") == 0

    assert posts.carrying(ids) == [ids]
    assert_stored_once(host, test_run, ids)


def test_requests_stay_within_1_mib(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    sizes: list[tuple[int, int]] = []  # (bytes, events) per request

    def measure(request: Request) -> None:
        if request.method == "POST":
            sizes.append((len(request.post_data_buffer or b""), len(event_ids(request))))

    page.on("request", measure)
    open_tracker(page, fixture_page)
    ids = send(page, 100, student, sections=60)  # about 12.5 KB each: 1.2 MB in all
    wait_sent(page)

    assert len(sizes) == 2
    assert all(size <= 1024 * 1024 for size, _ in sizes)
    assert sum(count for _, count in sizes) == 100
    assert_stored_once(host, test_run, ids)


def test_413_splits_the_batch_in_halves(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    posts = Posts()
    page.route(EVENTS, fail_first([answer(413)], posts))
    open_tracker(page, fixture_page, flushInterval=60_000)
    ids = send(page, 10, student)
    page.evaluate("window.tracker.flush()")
    wait_sent(page)

    assert [sent for _, sent in posts.seen] == [ids, ids[:5], ids[5:]]
    assert_stored_once(host, test_run, ids)


# --- retries ------------------------------------------------------------------------------


def test_503_is_retried_after_retry_after_with_the_same_ids(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    posts = Posts()
    unavailable = answer(503, **{"Retry-After": "1"})
    page.route(EVENTS, fail_first([unavailable, unavailable], posts))
    open_tracker(page, fixture_page, flushInterval=50, retry={"baseDelay": 50, "maxDelay": 200})
    ids = send(page, 5, student)
    wait_sent(page)

    assert [sent for _, sent in posts.seen] == [ids, ids, ids]
    gaps = [later[0] - earlier[0] for earlier, later in pairwise(posts.seen)]
    # Retry-After (1 s) wins over the backoff (at most 200 ms here).
    assert all(gap >= 0.95 for gap in gaps), gaps
    failures = [r for r in results(page) if "error" in r]
    assert [(r["status"], r["event_ids"]) for r in failures] == [(503, ids), (503, ids)]
    assert all(r["retry_in"] >= 1000 for r in failures)
    assert results(page)[-1]["accepted"] == 5
    assert_stored_once(host, test_run, ids)


def test_429_with_an_http_date_and_a_network_error_are_retried(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    posts = Posts()

    def too_many(route: Route) -> None:
        # An HTTP date 2 s ahead, in whole seconds: more than 1 s from now.
        later = formatdate(time.time() + 2, usegmt=True)
        answer(429, **{"Retry-After": later})(route)

    page.route(EVENTS, fail_first([too_many, lambda route: route.abort()], posts))
    open_tracker(page, fixture_page, flushInterval=50, retry={"baseDelay": 50, "maxDelay": 200})
    ids = send(page, 4, student)
    wait_sent(page)

    assert [sent for _, sent in posts.seen] == [ids, ids, ids]
    assert posts.seen[1][0] - posts.seen[0][0] >= 0.95
    errors = [r for r in results(page) if "error" in r]
    assert errors[0]["status"] == 429
    assert errors[1]["error"].startswith("network")
    assert_stored_once(host, test_run, ids)


def test_401_keeps_the_events_for_a_retry(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    # A lapsed sign-in or a rotated key: the events are fine, so they wait.
    posts = Posts()
    page.route(EVENTS, fail_first([answer(401)], posts))
    open_tracker(page, fixture_page, flushInterval=50, retry={"baseDelay": 50, "maxDelay": 200})
    ids = send(page, 2, student)
    wait_sent(page)

    assert [sent for _, sent in posts.seen] == [ids, ids]
    assert results(page)[0]["status"] == 401
    assert_stored_once(host, test_run, ids)


def test_422_is_dropped_and_reported_not_retried(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, posts: Posts, student: str
) -> None:
    open_tracker(page, fixture_page, flushInterval=60_000)
    bad = send(page, 2, student, invalid=True)
    assert page.evaluate("window.tracker.flush()") == 0
    rejected = results(page)[0]
    assert rejected["status"] == 422
    assert rejected["accepted"] == 0
    assert [r["event_id"] for r in rejected["rejected"]] == bad
    assert rejected["rejected"][0]["errors"][0]["field"] == "progress_percent"

    # A batch with one invalid event: the others are stored, the invalid one reported.
    good = send(page, 2, student)
    worse = send(page, 1, student, invalid=True)
    assert page.evaluate("window.tracker.flush()") == 0
    mixed = results(page)[1]
    assert mixed["status"] == 202
    assert mixed["accepted"] == 2
    assert [r["event_id"] for r in mixed["rejected"]] == worse

    # Nothing was sent twice.
    assert [sent for _, sent in posts.seen] == [bad, good + worse]
    assert_stored_once(host, test_run, good)
    assert copies(test_run, bad + worse) == dict.fromkeys(bad + worse, (0, 0))


# --- durability -----------------------------------------------------------------------------


def block(how: str) -> Callable[[Route], None]:
    """The endpoint unreachable (abort) or answering 503 with a long Retry-After."""
    if how == "abort":
        return lambda route: route.abort()
    return answer(503, **{"Retry-After": "60"})


# Chromium's keepalive request at unload escapes Playwright's routes, so with
# "abort" the app may get the events from the pagehide flush as well (and dedupe
# them); during a Retry-After the tracker sends nothing at pagehide, so with
# "503" only the stored buffer can bring them.
@pytest.mark.parametrize("how", ["abort", "503"])
def test_buffered_events_survive_a_reload_and_are_sent_once(
    host: DevHost,
    test_run: TestRun,
    context: BrowserContext,
    page: Page,
    fixture_page: str,
    student: str,
    how: str,
) -> None:
    context.route(EVENTS, block(how))
    open_tracker(page, fixture_page, retry={"baseDelay": 100, "maxDelay": 500})
    ids = send(page, 7, student)
    page.wait_for_function("window.results.some((r) => r.error)")
    assert len(buffers(page)) == 1

    page.reload()
    if how == "503":
        host.wait_idle()
        assert copies(test_run, ids) == dict.fromkeys(ids, (0, 0))
    context.unroute(EVENTS)
    posts = Posts()
    context.on("request", posts.record)
    open_tracker(page, fixture_page)
    wait_sent(page)

    assert posts.carrying(ids) == [ids]
    assert buffers(page) == []
    assert_stored_once(host, test_run, ids)


def buffers(page: Page) -> list[str]:
    """The tracker entries in the page's localStorage."""
    keys: list[str] = page.evaluate(
        "Object.keys(localStorage).filter((k) => k.startsWith('activity-tracker:'))"
    )
    return keys


def test_max_buffer_drops_the_oldest_and_counts_them(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, posts: Posts, student: str
) -> None:
    open_tracker(page, fixture_page, maxBuffer=10, flushInterval=60_000)
    ids = send(page, 15, student)
    page.wait_for_function("window.results.length > 0")

    assert results(page) == [{"dropped": 5, "event_ids": ids[:5]}]
    assert page.evaluate("window.tracker.pending()") == 10
    assert page.evaluate("window.tracker.flush()") == 0
    assert posts.carrying(ids) == [ids[5:]]
    assert_stored_once(host, test_run, ids[5:])


def test_works_without_local_storage(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    page.add_init_script(
        "Object.defineProperty(window, 'localStorage', "
        "{ get() { throw new DOMException('denied', 'SecurityError'); } });"
    )
    open_tracker(page, fixture_page)
    ids = send(page, 3, student)
    wait_sent(page)
    assert_stored_once(host, test_run, ids)


# --- leaving the page -----------------------------------------------------------------------

# Records the options of every fetch (the page's own fetch is what the tracker calls).
RECORD_FETCH = """() => {
  window.fetches = [];
  const original = window.fetch;
  window.fetch = (url, init) => {
    window.fetches.push({ keepalive: !!init.keepalive, body: JSON.parse(init.body) });
    return original(url, init);
  };
}"""


def test_pagehide_flushes_with_keepalive_and_its_answer_confirms(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    page.goto(fixture_page)
    page.evaluate(RECORD_FETCH)
    open_tracker(page, fixture_page, flushInterval=60_000)
    ids = send(page, 3, student)
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }))")
    wait_sent(page)  # the keepalive request's answer reached the page

    fetches = page.evaluate("window.fetches")
    assert [(f["keepalive"], [e["event_id"] for e in f["body"]["events"]]) for f in fetches] == [
        (True, ids)
    ]
    assert buffers(page) == []
    assert_stored_once(host, test_run, ids)


def test_hidden_page_flushes_with_keepalive(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    page.goto(fixture_page)
    page.evaluate(RECORD_FETCH)
    open_tracker(page, fixture_page, flushInterval=60_000)
    ids = send(page, 2, student)
    page.evaluate(
        """Object.defineProperty(document, "visibilityState", { value: "hidden" });
        document.dispatchEvent(new Event("visibilitychange"));"""
    )
    wait_sent(page)
    assert [f["keepalive"] for f in page.evaluate("window.fetches")] == [True]
    assert_stored_once(host, test_run, ids)


def test_events_pending_when_the_page_is_left_still_arrive(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    open_tracker(page, fixture_page, flushInterval=60_000)
    ids = send(page, 4, student)
    # Nothing is due for a minute; pagehide sends them, in a request that outlives
    # the page (keepalive; Playwright does not see it, the app does).
    page.goto("about:blank")

    assert_stored_once(host, test_run, ids)


# --- several tabs, several copies ---------------------------------------------------------------


# With Web Locks a tab takes over a buffer whose owner's lock is free; without
# them (older browsers, insecure origins), one whose owner released it or stopped
# refreshing it, after writing a claim that must still be its own a moment later.
@pytest.mark.parametrize("locks", [True, False], ids=["web-locks", "claims"])
def test_a_closed_tabs_buffer_is_sent_by_one_other_tab(
    host: DevHost,
    test_run: TestRun,
    context: BrowserContext,
    page: Page,
    fixture_page: str,
    student: str,
    locks: bool,
) -> None:
    if not locks:
        context.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });"
        )
    context.route(EVENTS, block("503"))
    open_tracker(page, fixture_page)
    assert page.evaluate("!!navigator.locks") is locks
    ids = send(page, 6, student)
    page.wait_for_function("window.results.some((r) => r.error)")
    page.close(run_before_unload=True)
    context.unroute(EVENTS)
    host.wait_idle()
    assert copies(test_run, ids) == dict.fromkeys(ids, (0, 0))

    posts = Posts()
    context.on("request", posts.record)
    tabs = [context.new_page(), context.new_page()]
    for tab in tabs:
        tab.goto(fixture_page)
    for tab in tabs:
        open_tracker(tab, fixture_page)
    assert_stored_once(host, test_run, ids)
    for tab in tabs:
        wait_sent(tab)
    assert buffers(tabs[0]) == []
    assert posts.carrying(ids) == [ids]


def test_two_copies_of_the_module_work_and_leave_no_globals(
    host: DevHost, test_run: TestRun, page: Page, fixture_page: str, student: str
) -> None:
    page.goto(fixture_page)
    outcome = page.evaluate(
        """async ([url, key, student]) => {
          const before = new Set(Object.getOwnPropertyNames(window));
          const one = await import(url);
          const two = await import(url + "?copy=2");
          const trackers = [one, two].map((m) =>
            m.createTracker({ headers: () => ({ "x-functions-key": key }), flushInterval: 60000 }));
          const now = new Date().toISOString();
          const ids = trackers.map((t) => t.lessonProgress({
            student_id: student, lesson_id: crypto.randomUUID(), started_at: now,
            progress_percent: 10, video_watch_time: 5, sections_read: [], last_accessed_at: now }));
          const left = await Promise.all(trackers.map((t) => t.flush()));
          trackers.forEach((t) => t.stop());
          const added = Object.getOwnPropertyNames(window).filter((n) => !before.has(n));
          return { ids, left, added, distinct: one.createTracker !== two.createTracker };
        }""",
        [TRACKER, FUNCTION_KEY, student],
    )
    assert outcome["left"] == [0, 0]
    assert outcome["added"] == []
    assert outcome["distinct"]
    assert_stored_once(host, test_run, outcome["ids"])
