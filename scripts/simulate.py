"""Send a simulated stream of activity events to a running app.

    python scripts/simulate.py --url http://localhost:7071 --students 200 \\
        --teachers 20 --lessons 30 --quizzes 15 --events 20000 --batch 100 \\
        --concurrency 8 --duplicates 0.05 --shuffle 0.1 --seed 1 [--key KEY]

Events come from eventgen.py (valid, coherent, skewed; some re-sent with the
same event_id, some late). They are POSTed in batches to /api/v1/events by a
pool of threads sharing one keep-alive HTTP client. A 503 is retried after
its Retry-After, and a lost connection after a back-off: re-sending is safe
because the server recognises the event_ids. Exit status 1 when any batch
failed or any event was rejected (the generator only makes valid events).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

import httpx
from eventgen import Config, Event, batches, generate
from tqdm import tqdm

EVENTS_PATH = "/api/v1/events"
HEALTH_PATH = "/api/v1/health"
MAX_RETRY_AFTER_SECONDS = 60.0
SHOWN_REJECTIONS = 5


@dataclass
class Outcome:
    """What became of one batch, after any retries."""

    size: int
    status: int | None = None
    accepted: int = 0
    rejected: int = 0
    requests: int = 0
    retried_503: int = 0
    transport_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str | None = None
    rejections: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Summary:
    """Totals over the whole run."""

    batches: int = 0
    failed_batches: int = 0
    events_sent: int = 0
    requests: int = 0
    retried_503: int = 0
    transport_errors: int = 0
    accepted: int = 0
    rejected: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        self.requests += outcome.requests
        self.retried_503 += outcome.retried_503
        self.transport_errors += outcome.transport_errors
        self.accepted += outcome.accepted
        self.rejected += outcome.rejected
        self.latencies.extend(outcome.latencies)
        self.statuses[str(outcome.status) if outcome.status else "none"] += 1
        if outcome.error is not None:
            self.failed_batches += 1
            self.errors[outcome.error] += 1
        room = SHOWN_REJECTIONS - len(self.rejections)
        self.rejections.extend(outcome.rejections[: max(0, room)])


def retry_after_seconds(header: str | None, attempt: int) -> float:
    """Seconds to wait as the server asked (delta or HTTP date), else back off."""
    if header:
        header = header.strip()
        try:
            return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(header)))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(header)
            return min(
                MAX_RETRY_AFTER_SECONDS, max(0.0, (when - datetime.now(UTC)).total_seconds())
            )
        except (TypeError, ValueError):
            pass
    return backoff_seconds(attempt)


def backoff_seconds(attempt: int) -> float:
    # Exponential with jitter, so a crowd of clients does not retry in step.
    return float(min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def send_batch(
    client: httpx.Client, url: str, headers: dict[str, str], batch: list[Event], retries: int
) -> Outcome:
    """POST one batch; retry 503s and lost connections up to ``retries`` times."""
    outcome = Outcome(size=len(batch))
    body = json.dumps({"events": batch}, ensure_ascii=False, separators=(",", ":")).encode()
    for attempt in range(1, retries + 2):
        outcome.requests += 1
        started = time.perf_counter()
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            outcome.transport_errors += 1
            outcome.error = f"{type(exc).__name__}: {exc}"
            if attempt <= retries:
                time.sleep(backoff_seconds(attempt))
            continue
        outcome.latencies.append(time.perf_counter() - started)
        outcome.status = response.status_code
        if response.status_code == 503:
            outcome.error = "503 after every retry"
            if attempt <= retries:
                outcome.retried_503 += 1
                time.sleep(retry_after_seconds(response.headers.get("Retry-After"), attempt))
            continue
        return read_response(outcome, response, batch)
    return outcome


def read_response(outcome: Outcome, response: httpx.Response, batch: list[Event]) -> Outcome:
    outcome.error = None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code in (202, 422) and isinstance(payload, dict):
        outcome.accepted = int(payload.get("accepted", 0))
        rejected = payload.get("rejected") or []
        outcome.rejected = len(rejected)
        for item in rejected[:SHOWN_REJECTIONS]:
            index = item.get("index") if isinstance(item, dict) else None
            event = batch[index] if isinstance(index, int) and 0 <= index < len(batch) else None
            errors = item.get("errors") if isinstance(item, dict) else item
            outcome.rejections.append({"errors": errors, "event": event})
        return outcome
    detail = payload.get("error") if isinstance(payload, dict) else response.text[:200]
    outcome.error = f"HTTP {response.status_code}: {detail}"
    if response.status_code in (401, 403):
        outcome.error += " (the app wants a function key: --key)"
    return outcome


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def probe(client: httpx.Client, base: str) -> None:
    """Fail fast, with a hint, when nothing listens at ``base``."""
    try:
        client.get(base + HEALTH_PATH, timeout=10.0)
    except httpx.TransportError as exc:
        sys.exit(f"simulate: cannot reach {base} ({exc}); is the app running? (make run)")


def run(args: argparse.Namespace, config: Config, dump: IO[str] | None) -> tuple[Summary, float]:
    """Send the whole stream; the totals and the seconds it took."""
    base = args.url.rstrip("/").removesuffix(EVENTS_PATH)
    url = base + EVENTS_PATH
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["x-functions-key"] = args.key
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    with httpx.Client(limits=limits, timeout=args.timeout) as client:
        probe(client, base)
        return send_all(client, url, headers, args, config, dump)


def send_all(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    args: argparse.Namespace,
    config: Config,
    dump: IO[str] | None,
) -> tuple[Summary, float]:
    summary = Summary()
    total = config.total_deliveries
    with (
        ThreadPoolExecutor(max_workers=args.concurrency) as pool,
        tqdm(total=total, unit="ev", disable=args.no_progress, smoothing=0.1) as bar,
    ):
        in_flight: set[Future[Outcome]] = set()

        def collect(done: set[Future[Outcome]]) -> None:
            for future in done:
                outcome = future.result()
                summary.add(outcome)
                bar.update(outcome.size)

        started = time.perf_counter()
        try:
            for batch in batches(generate(config), config.batch):
                # A bounded backlog keeps memory flat and the arrival order close
                # to the generated one (concurrency reorders a little more).
                if len(in_flight) >= 2 * args.concurrency:
                    done, in_flight = wait_some(in_flight)
                    collect(done)
                summary.batches += 1
                summary.events_sent += len(batch)
                summary.event_ids.update(event["event_id"] for event in batch)
                if dump is not None:
                    dump.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in batch)
                in_flight.add(pool.submit(send_batch, client, url, headers, batch, args.retries))
            while in_flight:
                done, in_flight = wait_some(in_flight)
                collect(done)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            print("\nsimulate: interrupted; totals so far", file=sys.stderr)
        elapsed = time.perf_counter() - started
    return summary, elapsed


def wait_some(futures: set[Future[Outcome]]) -> tuple[set[Future[Outcome]], set[Future[Outcome]]]:
    done, pending = wait(futures, return_when=FIRST_COMPLETED)
    return set(done), set(pending)


def report(summary: Summary, elapsed: float, out: IO[str]) -> None:
    latencies = sorted(summary.latencies)
    unique = len(summary.event_ids)
    rate = summary.events_sent / elapsed if elapsed > 0 else 0.0
    ms = [1000 * percentile(latencies, p) for p in (0.50, 0.95, 0.99)]
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(summary.statuses.items()))
    retried = f"{summary.retried_503} retried after 503"
    lost = f"{summary.transport_errors} transport errors"
    rows = [
        ("requests", f"{summary.requests} ({retried}, {lost})"),
        ("batches", f"{summary.batches} ({summary.failed_batches} failed; statuses {statuses})"),
        ("events sent", str(summary.events_sent)),
        ("unique events", str(unique)),
        ("duplicates sent", str(summary.events_sent - unique)),
        ("accepted", str(summary.accepted)),
        ("rejected", str(summary.rejected)),
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
    add("--key", default=None, help="function key, sent as x-functions-key")
    add("--timeout", type=float, default=30.0, help="seconds per request")
    add("--retries", type=int, default=8, help="retries per batch (503 or lost connection)")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--dry-run", action="store_true", help="generate only; print counts")
    add("--dump", type=Path, default=None, help="also write the events as JSON lines ('-': stdout)")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 500:
        parser.error("--batch must be between 1 and 500 (the API's limit per request)")
    if args.concurrency < 1 or args.retries < 0:
        parser.error("--concurrency must be at least 1 and --retries not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
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
        summary, elapsed = run(args, config, dump)
    report(summary, elapsed, sys.stdout)
    return 1 if summary.failed_batches or summary.rejected else 0


def open_dump(path: Path | None) -> AbstractContextManager[IO[str] | None]:
    """Where --dump writes: nowhere, stdout ('-'), or a file."""
    if path is None:
        return nullcontext(None)
    if str(path) == "-":
        return nullcontext(sys.stdout)
    return path.open("w", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
