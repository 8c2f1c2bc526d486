"""Send simulated activity events to a running app, through the Python client.

    .venv/bin/python -m scripts.simulate --url http://localhost:7071 --students 200 \\
        --teachers 20 --lessons 30 --quizzes 15 --events 20000 --batch 100 \\
        --concurrency 8 --duplicates 0.05 --shuffle 0.1 --seed 1 [--key KEY]

    .venv/bin/python -m scripts.simulate --live [--minutes N] [--class-size 25]

Events come from scripts.eventgen (valid, coherent, skewed; some re-sent with the
same event_id, some late) and go through activity_client.ActivityClient
(clients/python): batches of --batch events to /api/v1/events from
--concurrency sender threads, 503/429/5xx and lost connections retried with
the same event ids (after Retry-After, or a back-off) up to --retries times,
a 413 split in two. Re-sent duplicates are sent as the same event_id twice.

--live plays one class in real time instead, so dashboards move while you
watch: a teacher with a lesson and a quiz, ~25 students working through it,
quiz attempts, forum posts, feedback and a live session, until Ctrl-C or
--minutes. It prints the ids, the dashboard pages to open and whom to sign
in as.

The key is --key, else LOCAL_FUNCTION_KEY (the environment, then
local.settings.json) when set. Exit status 1 when any batch failed or any
event was rejected (the generators only make valid events).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx
from activity_client import ActivityClient, BatchResult
from tqdm import tqdm

from scripts.eventgen import Classroom, Config, generate

ROOT = Path(__file__).resolve().parents[1]
EVENTS_PATH = "/api/v1/events"
HEALTH_PATH = "/api/v1/health"
SHOWN_REJECTIONS = 5


@dataclass
class Summary:
    """Totals over the whole run, from the client's results (any thread)."""

    batches: int = 0
    failed_batches: int = 0
    events_sent: int = 0
    accepted: int = 0
    rejected: int = 0
    undelivered: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, event_id: str) -> None:
        self.events_sent += 1
        self.event_ids.add(event_id)

    def add(self, result: BatchResult) -> None:
        with self.lock:
            self.batches += 1
            self.accepted += result.accepted
            self.rejected += len(result.rejected)
            self.undelivered += len(result.undelivered)
            self.latencies.extend(result.latencies)
            self.statuses[str(result.status) if result.status else "none"] += 1
            if result.error is not None:
                self.failed_batches += 1
                self.errors[result.error] += 1
            for rejection in result.rejected[: max(0, SHOWN_REJECTIONS - len(self.rejections))]:
                errors = [{"field": e.field, "message": e.message} for e in rejection.errors]
                self.rejections.append({"errors": errors, "event": dict(rejection.event)})


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def base_url(url: str) -> str:
    return url.rstrip("/").removesuffix(EVENTS_PATH)


def function_key(explicit: str | None, settings: Path = ROOT / "local.settings.json") -> str | None:
    """--key, else LOCAL_FUNCTION_KEY from the environment or local.settings.json, when set."""
    if explicit:
        return explicit
    if os.environ.get("LOCAL_FUNCTION_KEY"):
        return os.environ["LOCAL_FUNCTION_KEY"]
    try:
        values = json.loads(settings.read_text(encoding="utf-8")).get("Values", {})
    except (OSError, ValueError, AttributeError):
        return None
    key = values.get("LOCAL_FUNCTION_KEY") if isinstance(values, dict) else None
    return key if isinstance(key, str) and key else None


def probe(base: str) -> None:
    """Fail fast, with a hint, when nothing listens at ``base``."""
    try:
        httpx.get(base + HEALTH_PATH, timeout=10.0)
    except httpx.TransportError as exc:
        sys.exit(f"simulate: cannot reach {base} ({exc}); is the app running? (make run)")


def make_client(
    args: argparse.Namespace,
    key: str | None,
    on_result: Callable[[BatchResult], None],
    **options: Any,
) -> ActivityClient:
    return ActivityClient(
        base_url(args.url),
        key=key,
        timeout=args.timeout,
        max_attempts=args.retries + 1,
        on_result=on_result,
        **options,
    )


# --- a stream of --events ------------------------------------------------------------


def run(
    args: argparse.Namespace, config: Config, key: str | None, dump: IO[str] | None
) -> tuple[Summary, ActivityClient, float]:
    """Send the whole stream; the totals, the client (for its stats) and the seconds it took."""
    probe(base_url(args.url))
    summary = Summary()
    bar = tqdm(total=config.total_deliveries, unit="ev", disable=args.no_progress, smoothing=0.1)

    def counted(result: BatchResult) -> None:
        summary.add(result)
        bar.update(result.size)

    client = make_client(
        args,
        key,
        counted,
        max_batch=config.batch,
        concurrency=args.concurrency,
        # Two batches per sender may wait: memory stays flat and the arrival
        # order close to the generated one. send() waits for room meanwhile.
        max_buffer=2 * args.concurrency * config.batch,
        buffer_timeout=None,
    )
    started = time.perf_counter()
    try:
        for event in generate(config):
            # Re-sent duplicates keep their event_id: the client sends them as is.
            summary.sent(client.send(event))
            if dump is not None:
                dump.write(json.dumps(event, ensure_ascii=False) + "\n")
        client.close()
    except KeyboardInterrupt:
        print("\nsimulate: interrupted; totals so far", file=sys.stderr)
        client.close(timeout=5)
    finally:
        bar.close()
    return summary, client, time.perf_counter() - started


def report(summary: Summary, client: ActivityClient, elapsed: float, out: IO[str]) -> None:
    stats = client.stats()
    latencies = sorted(summary.latencies)
    unique = len(summary.event_ids)
    rate = summary.events_sent / elapsed if elapsed > 0 else 0.0
    ms = [1000 * percentile(latencies, p) for p in (0.50, 0.95, 0.99)]
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(summary.statuses.items()))
    retried = ", ".join(
        [
            f"{stats.retries.get('503', 0)} retried after 503",
            *(
                f"{n} after {why}"
                for why, n in sorted(stats.retries.items())
                if why not in ("503", "connection")
            ),
            f"{stats.retries.get('connection', 0)} transport errors",
            *([f"{stats.splits} split after 413"] if stats.splits else []),
        ]
    )
    rows = [
        ("requests", f"{stats.requests} ({retried})"),
        ("batches", f"{summary.batches} ({summary.failed_batches} failed; statuses {statuses})"),
        ("events sent", str(summary.events_sent)),
        ("unique events", str(unique)),
        ("duplicates sent", str(summary.events_sent - unique)),
        ("accepted", str(summary.accepted)),
        ("rejected", str(summary.rejected)),
        *([("undelivered", str(summary.undelivered))] if summary.undelivered else []),
        ("elapsed", f"{elapsed:.1f} s"),
        ("events/s", f"{rate:.0f}"),
        ("latency", f"p50 {ms[0]:.1f} ms, p95 {ms[1]:.1f} ms, p99 {ms[2]:.1f} ms"),
    ]
    for name, value in rows:
        print(f"{name:<16}{value}", file=out)
    for error, count in summary.errors.most_common(5):
        print(f"failed batch     {count} x {error}", file=out)
    for rejection in summary.rejections:
        print(f"rejected         {json.dumps(rejection, ensure_ascii=False)[:600]}", file=out)


def dry_run(config: Config, dump: IO[str] | None) -> None:
    """Generate without sending: counts by type, and the events when dumping."""
    types: Counter[str] = Counter()
    ids: set[str] = set()
    sent = 0
    for event in generate(config):
        sent += 1
        types[event["type"]] += 1
        ids.add(event["event_id"])
        if dump is not None:
            dump.write(json.dumps(event, ensure_ascii=False) + "\n")
    print(f"events {sent}, unique {len(ids)}, duplicates {sent - len(ids)}", file=sys.stderr)
    for name, count in types.most_common():
        print(f"  {name:<24}{count}", file=sys.stderr)


# --- --live: one class in real time -----------------------------------------------------


class StopFlag:
    """Ctrl-C (or SIGTERM) asks the live loop to stop; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def introduce(
    classroom: Classroom, base: str, minutes: float | None, keyed: bool, out: IO[str]
) -> None:
    dashboard = f"{base}/api/dashboard"
    students = [learner.student_id for learner in classroom.learners]
    until = f"for {minutes:g} minutes" if minutes is not None else "until Ctrl-C"
    lines = [
        f"simulate --live: one class in real time at {base}, {until}",
        "",
        f"  teacher   {classroom.teacher_id}",
        f"  lesson    {classroom.lesson.lesson_id}  {classroom.lesson.title}",
        f"  quiz      {classroom.quiz.quiz_id}  {classroom.quiz.title}",
        f"  session   {classroom.session_id}  (class {classroom.class_id})",
        f"  students  {len(students)}, e.g. {students[0]}",
        "",
        "Open:",
        f"  {dashboard}/lessons/{classroom.lesson.lesson_id}",
        f"  {dashboard}/quizzes/{classroom.quiz.quiz_id}",
        f"  {dashboard}/live/{classroom.session_id}",
        f"  {dashboard}/teachers/{classroom.teacher_id}",
        f"  {dashboard}/students/{students[0]}",
        "",
        f"Sign in at {base}/.auth/login/dev (user id, role) as",
        f"  Teacher  {classroom.teacher_id}  (may open every page above)",
        f"  Student  {students[0]}  (their own page, and the quiz once attempted)",
        *(f"  Student  {student}" for student in students[1:3]),
        *(
            ["The pages ask once for the function key this run uses (LOCAL_FUNCTION_KEY)."]
            if keyed
            else []
        ),
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def status_line(classroom: Classroom, client: ActivityClient, started: float) -> str:
    stats = client.stats()
    elapsed = int(time.monotonic() - started)
    counts = classroom.counts
    return (
        f"{elapsed // 60:02d}:{elapsed % 60:02d} "
        f"sent {stats.queued} accepted {stats.accepted} rejected {stats.rejected} "
        f"pending {stats.pending} | students {classroom.started} started "
        f"{classroom.completed} completed | quiz {counts['quiz_attempt']} attempts "
        f"{classroom.passed} passed | forum {counts['forum_activity']} "
        f"feedback {counts['feedback']} | live {len(classroom.polls)} polls "
        f"{classroom.messages} msgs"
    )


def live(args: argparse.Namespace, seed: int, key: str | None) -> int:
    base = base_url(args.url)
    probe(base)
    classroom = Classroom(datetime.now(UTC), students=args.class_size, seed=seed)
    introduce(classroom, base, args.minutes, key is not None, sys.stdout)
    summary = Summary()
    client = make_client(
        args, key, summary.add, max_batch=args.batch, flush_interval=1.0, buffer_timeout=None
    )
    stop = StopFlag()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    tty = sys.stderr.isatty()
    started = time.monotonic()
    ends = None if args.minutes is None else started + 60 * args.minutes
    shown = 0.0
    try:
        while not stop.requested and (ends is None or time.monotonic() < ends):
            for event in classroom.due(datetime.now(UTC)):
                summary.sent(client.send(event))
            now = time.monotonic()
            if now - shown >= (1.0 if tty else 15.0):
                shown = now
                line = status_line(classroom, client, started)
                print(f"\r\x1b[2K{line}" if tty else line, end="" if tty else "\n", file=sys.stderr)
            time.sleep(0.2)  # the pace of the class, not a wait for an outcome
        for event in classroom.finish(datetime.now(UTC)):
            summary.sent(client.send(event))
        if tty:
            print(file=sys.stderr)
        print("simulate: the teacher ends the session; sending what is left", file=sys.stderr)
        client.close(timeout=30)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(status_line(classroom, client, started), file=sys.stderr)
    report(summary, client, time.monotonic() - started, sys.stdout)
    return 1 if summary.failed_batches or summary.rejected else 0


# --- the command line ----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="simulate.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    defaults = Config()
    add = parser.add_argument
    add("--url", default="http://localhost:7071", help="the app's base URL")
    add("--students", type=int, default=defaults.students)
    add("--teachers", type=int, default=defaults.teachers)
    add("--lessons", type=int, default=defaults.lessons)
    add("--quizzes", type=int, default=defaults.quizzes)
    add("--events", type=int, default=defaults.events, help="unique events to generate")
    add("--batch", type=int, default=defaults.batch, help="events per request (at most 500)")
    add("--concurrency", type=int, default=8, help="requests in flight")
    add("--duplicates", type=float, default=defaults.duplicates, help="fraction re-sent")
    add("--shuffle", type=float, default=defaults.shuffle, help="fraction arriving late")
    add("--days", type=float, default=defaults.days, help="simulated window, ending now")
    add("--seed", type=int, default=None, help="reproduce a run (default: random, printed)")
    add("--key", default=None, help="function key, sent as x-functions-key (default: see above)")
    add("--timeout", type=float, default=30.0, help="seconds per request")
    add("--retries", type=int, default=8, help="retries per batch (503, 429, 5xx, lost connection)")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--dry-run", action="store_true", help="generate only; print counts")
    add("--dump", type=Path, default=None, help="also write the events as JSON lines ('-': stdout)")
    live_options = parser.add_argument_group("--live")
    add = live_options.add_argument
    add("--live", action="store_true", help="one class in real time, until Ctrl-C or --minutes")
    add("--minutes", type=float, default=None, help="--live: stop after this many minutes")
    add("--class-size", type=int, default=25, help="--live: students in the class")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 500:
        parser.error("--batch must be between 1 and 500 (the API's limit per request)")
    if args.concurrency < 1 or args.retries < 0:
        parser.error("--concurrency must be at least 1 and --retries not negative")
    if args.live and (args.class_size < 1 or (args.minutes is not None and args.minutes <= 0)):
        parser.error("--class-size must be at least 1 and --minutes positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    key = function_key(args.key)
    if args.live:
        print(f"simulate: seed {seed}", file=sys.stderr)
        return live(args, seed, key)
    try:
        config = Config(
            students=args.students,
            teachers=args.teachers,
            lessons=args.lessons,
            quizzes=args.quizzes,
            events=args.events,
            batch=args.batch,
            duplicates=args.duplicates,
            shuffle=args.shuffle,
            seed=seed,
            days=args.days,
        )
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    print(f"simulate: seed {seed}, {config.total_deliveries} events to send", file=sys.stderr)
    with open_dump(args.dump) as dump:
        if args.dry_run:
            dry_run(config, dump)
            return 0
        summary, client, elapsed = run(args, config, key, dump)
    report(summary, client, elapsed, sys.stdout)
    return 1 if summary.failed_batches or summary.rejected or summary.undelivered else 0


def open_dump(path: Path | None) -> AbstractContextManager[IO[str] | None]:
    """Where --dump writes: nowhere, stdout ('-'), or a file."""
    if path is None:
        return nullcontext(None)
    if str(path) == "-":
        return nullcontext(sys.stdout)
    return path.open("w", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
