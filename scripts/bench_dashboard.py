"""What open dashboards cost the server, and how soon a change shows in the browser.

On its own database, Redis prefix and queues, with the local Functions host in
a subprocess (queues on, timers off), a class is seeded (a teacher's lesson
with students who work on it). Then, each for WINDOW seconds, the host's CPU
time is read from /proc:

- idle: no page open (the floor: the host's own queue pollers);
- polling: PAGES open pages, half a teacher's lesson page (each student's
  progress, live), half students' own pages (their progress and their
  notifications, live), each live part asking again 0.8-1 s after each
  answer, as dashboard/assets/app.js does, with If-None-Match: unchanged views
  are 304s from their version in Redis;
- polling without ETags: the same requests without If-None-Match (every poll
  a full 200): what the ETags save.

The PAGES are HTTP clients making exactly the pages' live requests: 200 real
Chromium pages on this 2-core machine take the machine for themselves (load
average 10 at 150 pages, measured), which would measure the browser, not the
server. The 202 -> visible latency is measured in real browser pages
(BROWSER_PAGES lesson pages in Debian's Chromium) while the PAGES poll: a page
POSTs a progress event through fetch and times from its 202 to the moment its
own progress bar shows the new value (one clock: the page's).

    .venv/bin/python -m scripts.bench_dashboard [--pages 200] [--browser-pages 4]
        [--window 60] [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import psycopg
from playwright.sync_api import Browser, Page, sync_playwright

from scripts.benchlib import (
    Bench,
    BenchResources,
    DevhostProcess,
    load_average,
    percentile,
    tree_cpu_seconds,
)
from scripts.benchlib.browser import CHROMIUM, CHROMIUM_FLAGS

FLAGS = [
    *CHROMIUM_FLAGS,
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


def open_pages(browser: Browser, base: str, lesson: str, count: int) -> list[Page]:
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    pages = []
    for _ in range(count):
        page = context.new_page()
        page.goto(f"{base}/api/dashboard/lessons/{lesson}", wait_until="domcontentloaded")
        pages.append(page)
    for page in pages:  # every page has drawn its live part once
        page.wait_for_function("() => !document.querySelector('.state.loading')", timeout=120_000)
    return pages


class Pollers:
    """PAGES pages' live requests, on one event loop in a thread of its own."""

    def __init__(self, base: str, lesson: str, people: list[str], pages: int) -> None:
        self.sources: list[str] = []
        for n in range(pages):
            if n % 2 == 0:
                self.sources.append(f"/api/v1/lessons/{lesson}/progress?limit=100")
            else:
                student = people[n % len(people)]
                self.sources.append(f"/api/v1/students/{student}/progress")
                self.sources.append(f"/api/v1/users/{student}/notifications?limit=20")
        self.base = base
        self.etags = True
        self.answers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Pollers:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def _run(self) -> None:
        # aiohttp: far less client CPU per request than httpx, so the clients keep
        # the pages' pace instead of becoming the bottleneck.
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(self.base, connector=connector) as http:
            await asyncio.gather(*(self._poll(http, source) for source in self.sources))

    async def _poll(self, http: aiohttp.ClientSession, source: str) -> None:
        tag: str | None = None
        await asyncio.sleep(random.random())  # pages were opened at different moments
        while not self._stop.is_set():
            headers = {"If-None-Match": tag} if tag and self.etags else {}
            try:
                async with http.get(source, headers=headers) as answer:
                    await answer.read()
                    status = answer.status
                    tag = answer.headers.get("ETag", tag)
            except aiohttp.ClientError:
                status = 0
            self.answers[status] = self.answers.get(status, 0) + 1
            await asyncio.sleep(0.8 + random.random() * 0.2)


def executions(host: DevhostProcess) -> int:
    """HTTP function executions the host has logged so far."""
    text = host.log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "Executed 'Functions." in line)


def cpu_over(host: DevhostProcess, seconds: float) -> tuple[float, float, int]:
    """(CPU seconds the host used, wall seconds, executions) over a window."""
    start_cpu, start, ran = tree_cpu_seconds(host.pid), time.monotonic(), executions(host)
    time.sleep(seconds)
    return (
        tree_cpu_seconds(host.pid) - start_cpu,
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


BENCH = Bench(__doc__, seed=1)
BENCH.add("--pages", type=int, default=200)
BENCH.add("--browser-pages", type=int, default=4)
BENCH.add("--students", type=int, default=30)
BENCH.add("--window", type=float, default=60.0, help="seconds per measurement")
BENCH.add("--samples", type=int, default=20, help="202 -> visible samples (0: no browser)")


def bench(args: argparse.Namespace) -> int:
    random.seed(args.seed)
    with (
        BenchResources("dash") as resources,
        DevhostProcess(resources, queues=True) as host,
        sync_playwright() as playwright,
    ):
        lesson, people = seed(host.base_url, args.students)
        wait_stored(resources.dsn, args.students + 2)
        idle = cpu_over(host, args.window)
        pollers = Pollers(host.base_url, lesson, people, args.pages).start()
        time.sleep(5)  # every page has asked once
        pollers.answers.clear()
        polled = cpu_over(host, args.window)
        with_etags = dict(pollers.answers)
        pollers.etags = False
        time.sleep(3)
        pollers.answers.clear()
        full = cpu_over(host, args.window)
        without = dict(pollers.answers)
        pollers.etags = True
        latencies: list[float] = []
        if args.samples:  # --samples 0: the host's CPU alone, no browser
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=FLAGS
            )
            watchers = open_pages(browser, host.base_url, lesson, args.browser_pages)
            latencies = [
                visible_latency(
                    watchers[n % len(watchers)], people[n % len(people)], lesson, 10.5 + n % 80
                )
                for n in range(args.samples)
            ]
            browser.close()
        load = load_average()
        pollers.stop()

    def per_page_minute(cpu: float, wall: float) -> float:
        above_idle: float = cpu / wall - idle[0] / idle[1]
        return above_idle * 60 / int(args.pages)

    lessons = (args.pages + 1) // 2
    print(
        f"\n{args.pages} open pages ({lessons} lesson pages, {args.pages - lessons} student "
        f"pages: {len(pollers.sources)} live parts), {args.window:.0f} s windows"
    )
    print(f"  idle host:                 {idle[0] / idle[1] * 100:6.2f} % of a core")
    for name, (cpu, wall, _), answers in (
        ("polling (ETag / 304)", polled, with_etags),
        ("polling without ETags", full, without),
    ):
        total = sum(answers.values())
        share = answers.get(304, 0) / total if total else 0.0
        per_request = (cpu / wall - idle[0] / idle[1]) / (total / wall) if total else 0.0
        print(
            f"  {name:<26} {cpu / wall * 100:6.2f} % of a core, {total / wall:6.1f} requests/s "
            f"({share:.0%} 304), {per_request * 1000:.2f} ms CPU per request, "
            f"{per_page_minute(cpu, wall) * 1000:6.1f} ms CPU per page per minute"
        )
    if not latencies:
        return 0
    print(
        f"  202 -> visible in a browser page ({args.browser_pages} pages open beside them): "
        f"p50 {percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
        f"max {max(latencies):.2f} s ({len(latencies)} samples); load average {load[0]:.2f}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return BENCH.run(bench, argv)


if __name__ == "__main__":
    raise SystemExit(main())
