"""What open dashboards cost the server, and how soon a change shows in the browser.

On its own database, Redis prefix and queues, with the local Functions host in
a subprocess (queues on, timers off), a class is seeded (a teacher's lesson
and quiz, students with progress and attempts) and PAGES real browser pages
(Debian's Chromium through Playwright) are opened: half the lesson's page
(each student's progress bar, live), half students' own pages (progress and
notifications, live). Then, each for WINDOW seconds, the host's CPU time is
read from /proc:

- idle: no page open (the floor: the host's own pollers and timers);
- polling: every page polls its live parts about once a second; unchanged
  views are answered 304 from their version in Redis (ETag/If-None-Match);
- polling, no ETag: the same pages with If-None-Match stripped from their
  requests, so every poll is a full 200 (what the ETags save).

CPU per page per minute is (window - idle) / pages, scaled to a minute. Then,
with the pages still open, the 202 -> visible latency: a page POSTs a
progress event through fetch and times from its 202 to the moment its own
progress bar shows the new value (one clock: the page's).

    .venv/bin/python scripts/bench_dashboard.py [--pages 200] [--window 60] [--samples 20]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    BenchResources,
    DevhostProcess,
    load_average,
    log,
    machine,
    percentile,
    process_cpu_seconds,
)
from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Many pages in one browser: keep their timers running as a visible tab's.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seed(base: str, students: int) -> tuple[str, list[str]]:
    """A teacher's lesson with students who have started it; the lesson id and students."""
    now = datetime.now(UTC)
    teacher, lesson, quiz = (str(uuid.uuid4()) for _ in range(3))
    people = [str(uuid.uuid4()) for _ in range(students)]
    events: list[dict[str, Any]] = [
        {
            "type": "content_activity",
            "teacher_id": teacher,
            "content_id": content,
            "content_type": kind,
            "action": "created",
            "timestamp": iso(now - timedelta(days=1)),
            "title": f"Benchmark {kind}",
        }
        for content, kind in ((lesson, "lesson"), (quiz, "quiz"))
    ]
    for n, student in enumerate(people):
        events.append(
            {
                "type": "lesson_progress",
                "student_id": student,
                "lesson_id": lesson,
                "started_at": iso(now - timedelta(hours=2)),
                "progress_percent": float(n % 90),
                "video_watch_time": 60 * n,
                "sections_read": ["introduction"],
                "last_accessed_at": iso(now - timedelta(minutes=n)),
            }
        )
    with httpx.Client(base_url=base, timeout=60) as http:
        answer = http.post("/api/v1/events", json={"events": events})
        answer.raise_for_status()
    return lesson, people


def open_pages(
    browser: Browser, base: str, lesson: str, people: list[str], count: int
) -> list[Page]:
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    pages = []
    for n in range(count):
        page = context.new_page()
        address = (
            f"{base}/api/dashboard/lessons/{lesson}"
            if n % 2 == 0
            else f"{base}/api/dashboard/students/{people[n % len(people)]}"
        )
        page.goto(address, wait_until="domcontentloaded")
        pages.append(page)
        if (n + 1) % 25 == 0:
            log(f"opened {n + 1} pages")
    # Every page has drawn its live part once.
    for page in pages:
        page.wait_for_function("() => !document.querySelector('.state.loading')", timeout=120_000)
    return pages


@contextmanager
def without_etags(pages: list[Page]) -> Iterator[None]:
    def strip(route: Route) -> None:
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "if-none-match"}
        route.continue_(headers=headers)

    contexts = {page.context for page in pages}
    for context in contexts:
        context.route("**/api/v1/**", strip)
    try:
        yield
    finally:
        for context in contexts:
            context.unroute("**/api/v1/**", strip)


def executions(host: DevhostProcess) -> int:
    """HTTP function executions the host has logged so far."""
    text = host.log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "Executed 'Functions." in line)


def cpu_over(
    host: DevhostProcess, seconds: float, pump: Page | None = None
) -> tuple[float, float, int]:
    """(CPU seconds the host used, wall seconds, executions) over a window.

    With ``pump``, the wait is the browser's: Playwright handles routed
    requests only while it is called (a plain sleep would stall them).
    """
    start_cpu, start, ran = process_cpu_seconds(host.pid), time.monotonic(), executions(host)
    if pump is None:
        time.sleep(seconds)
    else:
        pump.wait_for_timeout(seconds * 1000)
    return (
        process_cpu_seconds(host.pid) - start_cpu,
        time.monotonic() - start,
        executions(host) - ran,
    )


def wait_stored(dsn: str, count: int, timeout: float = 120) -> None:
    """Until the seeded events are persisted (the host is idle again)."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM event_ledger").fetchone()
        if row and row[0] >= count:
            time.sleep(3)  # the archive's last messages and the pollers' back-off
            return
        if time.monotonic() > deadline:
            raise SystemExit("bench_dashboard: the seeded events were not stored")
        time.sleep(0.5)


def visible_latency(page: Page, student: str, lesson: str, value: float) -> float:
    """Seconds from the 202 of a POST made by the page to its own bar showing it."""
    result: float = page.evaluate(
        """async ({student, lesson, value}) => {
            const now = new Date().toISOString();
            const event = {type: "lesson_progress", student_id: student, lesson_id: lesson,
                started_at: now, progress_percent: value, video_watch_time: 1,
                sections_read: ["introduction"], last_accessed_at: now};
            const answer = await fetch("/api/v1/events", {method: "POST",
                headers: {"Content-Type": "application/json"}, body: JSON.stringify(event)});
            if (answer.status !== 202) throw new Error("POST answered " + answer.status);
            const accepted = performance.now();
            const shows = () => {
                const bar = document.querySelector(`li[data-id="${student}"] progress`);
                return bar && Number(bar.value) === value;
            };
            while (!shows()) {
                if (performance.now() - accepted > 30000) throw new Error("never shown");
                await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 5)));
            }
            return (performance.now() - accepted) / 1000;
        }""",
        {"student": student, "lesson": lesson, "value": value},
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per measurement")
    parser.add_argument("--samples", type=int, default=20, help="202 -> visible samples")
    args = parser.parse_args(argv)
    log(machine())
    with (
        BenchResources("dash") as resources,
        DevhostProcess(resources, queues=True) as host,
        sync_playwright() as playwright,
    ):
        lesson, people = seed(host.base_url, args.students)
        wait_stored(resources.dsn, args.students + 2)
        idle_cpu, idle_wall, _ = cpu_over(host, args.window)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        pages = open_pages(browser, host.base_url, lesson, people, args.pages)
        polled_cpu, polled_wall, polled_requests = cpu_over(host, args.window, pages[0])
        with without_etags(pages):
            full_cpu, full_wall, full_requests = cpu_over(host, args.window, pages[0])
        # A lesson page times its own POST's way to its bar.
        watcher = pages[0]
        latencies = [
            visible_latency(watcher, people[n % len(people)], lesson, float(10 + n % 80) + 0.5)
            for n in range(args.samples)
        ]
        browser.close()

    def per_page_minute(cpu: float, wall: float) -> float:
        above_idle: float = cpu / wall - idle_cpu / idle_wall
        return above_idle * 60 / int(args.pages)

    load = load_average()
    print(f"\n{args.pages} open pages, {args.window:.0f} s windows; load average {load[0]:.2f}")
    print(f"  idle host:                 {idle_cpu / idle_wall * 100:6.2f} % of a core")
    for name, cpu, wall, count in (
        ("polling (ETag / 304)", polled_cpu, polled_wall, polled_requests),
        ("polling without ETags", full_cpu, full_wall, full_requests),
    ):
        print(
            f"  {name:<26} {cpu / wall * 100:6.2f} % of a core, {count / wall:6.1f} requests/s, "
            f"{per_page_minute(cpu, wall) * 1000:6.1f} ms CPU per page per minute"
        )
    print(
        f"  202 -> visible in the page: p50 {percentile(latencies, 0.5):.2f} s, "
        f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s "
        f"({len(latencies)} samples)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
