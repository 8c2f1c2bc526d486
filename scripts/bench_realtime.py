"""Benchmark the real-time layer: visibility after 202, roll-up speed, big leaderboards.

On its own database, Redis prefix, queues, container and table prefix, with
the local Functions host in a subprocess (``python -m devhost --no-queues
--no-timers``: ingest applies Redis itself before answering 202):

(a) visibility: POST one event, then GET the view until it shows the event;
    time from the 202 to the answer that shows it (p50, p99), for student
    progress and for a quiz leaderboard, each sample on a fresh student /
    quiz whose view was read once before (as an open page would have). Run
    quiet, then again while other connections post 100-event batches.
(b) roll-up: fill B closed buckets of counters through
    ``RealtimeRepository.apply_events`` (realistic events), then in the same
    round time a raw pipelined HGETALL of those bucket keys (the floor: just
    reading them) and ``run_rollup`` into PostgreSQL; counters/s of both and
    the ratio, median of the rounds.
(c) leaderboard of one quiz with S students (default 100,000, filled with
    ``apply_events`` in large pipelined batches): reads/s and latency of
    ``GET /api/v1/quizzes/{id}/leaderboard?limit=10`` through the host with
    concurrent connections, and of the repository call in this process.

Everything it created is removed at the end.

    .venv/bin/python -m scripts.bench_realtime [--samples 300] [--students 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp

from scripts.benchlib import (
    Bench,
    BenchResources,
    DevhostProcess,
    latency_summary,
    load_average,
    log,
    percentile,
)
from scripts.eventgen import Config, batches, generate
from shared.models.events import ActivityEvent, event_adapter
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.services.rollup import run_rollup

JSON = {"Content-Type": "application/json"}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def progress_event(student: str, lesson: str, percent: float) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "type": "lesson_progress",
        "event_id": str(uuid.uuid4()),
        "student_id": student,
        "lesson_id": lesson,
        "started_at": iso(at - timedelta(minutes=20)),
        "progress_percent": percent,
        "video_watch_time": 300,
        "sections_read": ["intro", "part-1"],
        "last_accessed_at": iso(at),
    }


def attempt_event(student: str, quiz: str, score: float, at: datetime) -> dict[str, Any]:
    return {
        "type": "quiz_attempt",
        "event_id": str(uuid.uuid4()),
        "student_id": student,
        "quiz_id": quiz,
        "attempt_id": str(uuid.uuid4()),
        "attempt_number": 1,
        "answers": {"q1": "a", "q2": "c"},
        "score": score,
        "submitted_at": iso(at),
        "duration_seconds": 240,
        "is_passed": score >= 50,
    }


# --- (a) visibility ---------------------------------------------------------------------


def shows_progress(lesson: str, percent: float, document: Any) -> bool:
    return any(
        e["lesson_id"] == lesson and e["progress_percent"] == percent
        for e in document.get("lessons", [])
    )


def shows_entry(student: str, document: Any) -> bool:
    return any(e["student_id"] == student for e in document.get("entries", []))


async def visibility(
    base: str,
    samples: int,
    max_seconds: float,
    background: int,
    background_bodies: list[bytes],
) -> dict[str, tuple[list[float], list[float], list[int]]]:
    """{view: (202->visible seconds, POST seconds, GETs needed)}."""
    results: dict[str, tuple[list[float], list[float], list[int]]] = {}
    lesson = str(uuid.uuid4())
    stop = asyncio.Event()

    async def poster(session: aiohttp.ClientSession, offset: int) -> None:
        index = offset
        while not stop.is_set() and background_bodies:
            body = background_bodies[index % len(background_bodies)]
            index += background
            async with session.post(f"{base}/api/v1/events", data=body, headers=JSON) as r:
                await r.read()

    async def one(
        session: aiohttp.ClientSession,
        view_url: str,
        event: dict[str, Any],
        shows: Callable[[Any], bool],
    ) -> tuple[float, float, int]:
        async with session.get(view_url) as response:  # the page is open: view loaded
            await response.read()
            if response.status != 200:
                raise SystemExit(f"GET {view_url}: {response.status}")
        sent = time.perf_counter()
        async with session.post(
            f"{base}/api/v1/events", data=json.dumps(event), headers=JSON
        ) as response:
            await response.read()
            if response.status != 202:
                raise SystemExit(f"POST: {response.status} {await response.text()}")
        accepted = time.perf_counter()
        polls = 0
        while True:
            polls += 1
            async with session.get(view_url) as response:
                document = await response.json()
            if shows(document):
                return time.perf_counter() - accepted, accepted - sent, polls
            if time.perf_counter() - accepted > 5:
                raise SystemExit(f"event not visible at {view_url} after 5 s")

    connector = aiohttp.TCPConnector(limit=background + 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        posters = [asyncio.create_task(poster(session, i)) for i in range(background)]
        try:
            for view in ("progress", "leaderboard"):
                seen: list[float] = []
                posts: list[float] = []
                polls: list[int] = []
                deadline = time.perf_counter() + max_seconds
                for i in range(samples):
                    if time.perf_counter() > deadline:
                        break
                    student = str(uuid.uuid4())
                    percent = float(random.randint(1, 100))
                    if view == "progress":
                        url = f"{base}/api/v1/students/{student}/progress"
                        event = progress_event(student, lesson, percent)
                        shows: Callable[[Any], bool] = partial(shows_progress, lesson, percent)
                    else:
                        quiz = str(uuid.uuid4())
                        url = f"{base}/api/v1/quizzes/{quiz}/leaderboard?limit=10"
                        at = datetime.now(UTC) - timedelta(minutes=1)
                        event = attempt_event(student, quiz, percent, at)
                        shows = partial(shows_entry, student)

                    seconds, post, count = await one(session, url, event, shows)
                    seen.append(seconds)
                    posts.append(post)
                    polls.append(count)
                    if (i + 1) % max(1, samples // 5) == 0:
                        log(f"  visibility {view}: {i + 1}/{samples}")
                results[view] = (seen, posts, polls)
        finally:
            stop.set()
            await asyncio.gather(*posters, return_exceptions=True)
    return results


# --- (b) roll-up --------------------------------------------------------------------------


def rollup_round(
    realtime: RealtimeRepository,
    postgres: PostgresRepository,
    events: Sequence[ActivityEvent],
    buckets: int,
    base: datetime,
) -> tuple[int, float, float, int]:
    """Fill ``buckets`` closed buckets; time raw HGETALL and run_rollup.

    Returns (counters, raw seconds, roll-up seconds, rows committed).
    """
    seconds = realtime.bucket_seconds
    per_bucket = len(events) // buckets
    starts: list[int] = []
    for b in range(buckets):
        received = base + timedelta(seconds=b * seconds)
        chunk = events[b * per_bucket : (b + 1) * per_bucket]
        for i in range(0, len(chunk), 1000):
            realtime.apply_events(chunk[i : i + 1000], received)
        start = int(received.timestamp())
        starts.append(start - start % seconds)
    keys = [realtime.key("ctr", f"{seconds}:{start}") for start in starts]
    # Raw floor: one pipelined round trip reading every bucket.
    begin = time.perf_counter()
    pipe = realtime.client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    hashes: list[dict[str, str]] = pipe.execute()
    raw = time.perf_counter() - begin
    counters = sum(len(h) for h in hashes)
    if counters == 0:
        raise SystemExit("no counters were written; bucket keys differ from expected")
    begin = time.perf_counter()
    result = run_rollup(realtime, postgres, now=datetime.now(UTC))
    rolled = time.perf_counter() - begin
    if result.claims != buckets or result.committed != buckets:
        raise SystemExit(f"roll-up claimed {result.claims}, committed {result.committed}")
    left = sum(realtime.client.exists(key) for key in keys)
    if left:
        raise SystemExit(f"{left} bucket keys left after the roll-up")
    return counters, raw, rolled, result.rows


# --- (c) leaderboard ----------------------------------------------------------------------


def fill_leaderboard(realtime: RealtimeRepository, quiz: str, students: int) -> float:
    rng = random.Random(5)
    now = datetime.now(UTC) - timedelta(hours=1)
    begin = time.perf_counter()
    chunk: list[ActivityEvent] = []
    for i in range(students):
        at = now - timedelta(seconds=rng.randint(0, 30 * 86_400))
        raw = attempt_event(str(uuid.uuid4()), quiz, float(rng.randint(0, 1000)) / 10, at)
        chunk.append(event_adapter.validate_python(raw))
        if len(chunk) == 5_000 or i == students - 1:
            realtime.apply_events(chunk, now)
            chunk = []
            if (i + 1) % 20_000 == 0:
                log(f"  leaderboard fill: {i + 1}/{students}")
    return time.perf_counter() - begin


async def get_load(
    url: str, count: int, concurrency: int, max_seconds: float
) -> tuple[list[float], float, dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    issued = 0
    deadline = time.perf_counter() + max_seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < deadline:
            issued += 1
            begin = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - begin)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, statuses


def run_async(coroutine: Awaitable[Any]) -> Any:
    async def wrap() -> Any:
        return await coroutine

    return asyncio.run(wrap())


BENCH = Bench(__doc__, seed=21, concurrency=8)
BENCH.add("--samples", type=int, default=300, help="(a) per view and condition")
BENCH.add("--background", type=int, default=2, help="(a) loaded: posting conns")
BENCH.add("--buckets", type=int, default=20, help="(b) buckets per round")
BENCH.add("--bucket-events", type=int, default=1_000, help="(b) events per bucket")
BENCH.add("--rounds", type=int, default=3, help="(b) rounds")
BENCH.add("--students", type=int, default=100_000, help="(c) leaderboard size")
BENCH.add("--reads", type=int, default=5_000, help="(c) reads per measurement")
BENCH.add("--seconds", type=float, default=30.0, help="time bound per phase")


def bench(args: argparse.Namespace) -> int:
    random.seed(args.seed)
    log("generating events ...")
    total = args.buckets * args.bucket_events * args.rounds
    config = Config(events=total, duplicates=0.0, shuffle=0.0, seed=args.seed, students=2_000)
    rollup_events = [event_adapter.validate_python(e) for e in generate(config)]
    background_config = Config(events=20_000, duplicates=0.0, shuffle=0.0, seed=args.seed + 1)
    background_bodies = [
        json.dumps({"events": b}).encode() for b in batches(generate(background_config), 100)
    ]

    resources = BenchResources("realtime")
    with resources, DevhostProcess(resources, queues=False, timers=False) as host:
        base = host.base_url
        # (a) visibility, quiet and then under ingest load.
        vis = {
            "quiet": run_async(visibility(base, args.samples, args.seconds, 0, [])),
            f"with {args.background} connections posting 100-event batches": run_async(
                visibility(base, args.samples, args.seconds, args.background, background_bodies)
            ),
        }
        load_a = load_average()[0]

        # (b) roll-up, under a sub-prefix of the run's (the host's buckets stay apart).
        realtime = RealtimeRepository(resources.redis_url, resources.redis_prefix + "rollup:")
        rounds: list[tuple[int, float, float, int]] = []
        with PostgresRepository(resources.dsn) as postgres:
            per_round = args.buckets * args.bucket_events
            # Closed buckets: an hour ago, well past the roll-up's grace.
            base_time = datetime.now(UTC) - timedelta(hours=1)
            for r in range(args.rounds):
                log(f"  roll-up round {r + 1}/{args.rounds}")
                events = rollup_events[r * per_round : (r + 1) * per_round]
                start = base_time + timedelta(seconds=r * args.buckets * 60)
                rounds.append(rollup_round(realtime, postgres, events, args.buckets, start))
        realtime.close()

        # (c) a quiz with many students, on the host's prefix.
        realtime = RealtimeRepository(resources.redis_url, resources.redis_prefix)
        quiz = str(uuid.uuid4())
        log(f"  leaderboard fill: {args.students} students")
        fill_seconds = fill_leaderboard(realtime, quiz, args.students)
        url = f"{base}/api/v1/quizzes/{quiz}/leaderboard?limit=10"
        first = run_async(get_load(url, 20, 1, 60))  # loads the (empty) PostgreSQL side
        if first[2] != {200: 20}:
            raise SystemExit(f"leaderboard GET: {first[2]}")
        http_lat, http_seconds, statuses = run_async(
            get_load(url, args.reads, args.concurrency, args.seconds)
        )
        load_c = load_average()[0]
        in_lat: list[float] = []
        deadline = time.perf_counter() + args.seconds
        top: list[dict[str, Any]] | None = None
        for _ in range(args.reads):
            if time.perf_counter() > deadline:
                break
            begin = time.perf_counter()
            top = realtime.leaderboard(quiz, 10)
            in_lat.append(time.perf_counter() - begin)
        size = realtime.client.zcard(realtime.key("lb", quiz))
        realtime.close()
        if not top or len(top) != 10 or int(size) != args.students:
            raise SystemExit(f"leaderboard holds {size}, top {top}")

    print()
    print("(a) 202 -> visible (the GET answer that first shows the event); POST latency")
    for condition, views in vis.items():
        print(f"  {condition}:")
        for view, (seen, posts, polls) in views.items():
            p99 = percentile(seen, 0.99) * 1000
            print(
                f"    {view:<11} n={len(seen)}: 202->visible {latency_summary(seen)} "
                f"[target p99 < 50 ms: {'met' if p99 < 50 else 'MISSED'}]; "
                f"GETs needed max {max(polls)}; POST {latency_summary(posts)}"
            )
    print(f"  load average after (a): {load_a:.2f}")
    counters = [c for c, _, _, _ in rounds]
    raw_rates = [c / raw for c, raw, _, _ in rounds]
    roll_rates = [c / rolled for c, _, rolled, _ in rounds]
    ratios = sorted(r / w for r, w in zip(roll_rates, raw_rates, strict=True))
    print(
        f"(b) roll-up: {args.buckets} buckets of {args.bucket_events} events per round, "
        f"{statistics.median(counters):,.0f} counters, {rounds[0][3]} rows; "
        f"median of {args.rounds} rounds"
    )
    print(f"    raw pipelined HGETALL: {statistics.median(raw_rates):>12,.0f} counters/s")
    print(f"    run_rollup:            {statistics.median(roll_rates):>12,.0f} counters/s")
    print(
        f"    ratio roll-up / raw: {statistics.median(ratios):.3f} "
        f"(min {ratios[0]:.3f}, max {ratios[-1]:.3f})"
    )
    print(
        f"(c) leaderboard of {args.students:,} students (filled in {fill_seconds:.1f} s, "
        f"{args.students / fill_seconds:,.0f} attempts/s via apply_events)"
    )
    print(
        f"    HTTP GET ?limit=10, {args.concurrency} connections: {len(http_lat)} reads in "
        f"{http_seconds:.1f} s -> {len(http_lat) / http_seconds:,.0f} reads/s, "
        f"{latency_summary(http_lat)}; statuses {statuses}; load average {load_c:.2f}"
    )
    print(
        f"    RealtimeRepository.leaderboard(limit=10), in-process, sequential: "
        f"{len(in_lat) / sum(in_lat):,.0f} reads/s, {latency_summary(in_lat)}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return BENCH.run(bench, argv)


if __name__ == "__main__":
    sys.exit(main())
