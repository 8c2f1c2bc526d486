"""Benchmark HTTP ingest, and the cost of the inline real-time step.

Starts the local Functions host (``python -m devhost --no-queues --no-timers``,
so only ingest runs) in a subprocess, on its own database, Redis prefix,
queues, container and table prefix, and loads it from this process with
aiohttp over loopback:

(1) 1-event requests, (2) 100-event requests: events/s, requests/s and
    latency (p50/p90/p99), each phase bounded by a request count and a time.

(0) As the baseline, in the same run, the raw floor of what ingest must do:
    the same requests' envelopes (validated and packed beforehand) sent with
    ``QueueClient.send_message`` to the two queues by 8 threads (the size of
    the app's send pool), with no HTTP and no validation. HTTP and raw take
    turns in time slices (H, R, R, H, ...; ``--slices``), so both see the same
    shared Azurite and machine load. Each side's slices also record the CPU the
    whole machine spent (host, PostgreSQL, Redis, Azurite and this load
    generator): per event, the floor's over the app's is about the share of the
    floor ingest can reach while the machine's cores, not waiting, are the bound.

Then, in this process, it times ``shared.services.ingest.ingest`` itself with
the real ``EventQueue`` (the same Azurite queues) on the same kind of
requests, alternately (A) without and (B) with ``on_queued`` set to the
app's real-time step (``record`` into the real Redis), and reports the ratio
B/A (of the medians, and the median of adjacent A/B pairs): what the
real-time step adds to ingest; and the step's own median time.
Everything it created is removed at the end.

    .venv/bin/python -m scripts.bench_ingest [--seconds 20] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueServiceClient

from scripts.benchlib import (
    Bench,
    BenchResources,
    DevhostProcess,
    LoadResult,
    http_load,
    latency_summary,
    load_average,
    log,
    median,
    percentile,
    stores_cpu_by_store,
    tree_cpu_seconds,
)
from scripts.eventgen import Config, batches, generate
from shared.models.messages import pack_events
from shared.repositories.queue import EventQueue
from shared.repositories.realtime import RealtimeRepository
from shared.services.ingest import ingest, parse_body, validate_events
from shared.services.realtime import record

Body = tuple[bytes, int]


def request_bodies(count: int, size: int, seed: int) -> list[Body]:
    """``count`` request bodies of ``size`` unique, realistic events each."""
    config = Config(
        events=count * size,
        batch=size,
        duplicates=0.0,
        shuffle=0.0,
        seed=seed,
        students=2_000,
        teachers=100,
        lessons=200,
        quizzes=100,
    )
    bodies: list[Body] = []
    for batch in batches(generate(config), size):
        document: Any = batch[0] if size == 1 else {"events": batch}
        bodies.append((json.dumps(document).encode(), len(batch)))
    return bodies


def report_http(label: str, result: LoadResult) -> None:
    print(
        f"{label}: {result.requests} requests, {result.accepted} events accepted in "
        f"{result.elapsed:.1f} s -> {result.events_per_second:,.0f} events/s, "
        f"{result.requests_per_second:,.0f} requests/s; statuses {result.statuses}, "
        f"errors {result.errors}"
    )
    print(f"    latency {latency_summary(result.latencies)}")


def alternate(bodies: list[Body]) -> Iterator[tuple[bool, Body]]:
    """A, B, B, A, A, B, ...: each variant gets every other pair, so drift cancels."""
    for index, body in enumerate(bodies):
        yield (index % 4 in (1, 2)), body


Prepared = tuple[list[str], int]  # a request's envelopes, base64, and its event count


def prepare(bodies: list[Body]) -> list[Prepared]:
    """Validate and pack each body as ingest would, ahead of the raw sends."""
    received_at = datetime.now(UTC)
    prepared: list[Prepared] = []
    for body, count in bodies:
        events = validate_events(parse_body(body, "application/json")).events
        texts = [
            base64.b64encode(payload).decode("ascii")
            for payload, _ in pack_events(events, received_at)
        ]
        prepared.append((texts, count))
    return prepared


def raw_sends(
    resources: BenchResources, prepared: list[Prepared], concurrency: int, max_seconds: float
) -> tuple[float, int, int, int]:
    """Send prepared envelopes to the queues ingest writes, as the app would, minus the rest.

    ``concurrency`` requests at a time, each handing its sends to a shared pool
    of 8 threads and waiting for them (the app's ``EventQueue`` does exactly
    this). Returns (seconds, events covered, messages sent, requests consumed).
    """
    service = QueueServiceClient.from_connection_string(resources.storage)
    queues = [service.get_queue_client(name) for name in resources.ingest_queues]
    for queue in queues:
        with suppress(ResourceExistsError):
            queue.create_queue()
    sends = ThreadPoolExecutor(max_workers=8)
    deadline = time.perf_counter() + max_seconds

    def request(item: Prepared) -> tuple[int, int]:
        texts, count = item
        if time.perf_counter() > deadline:
            return 0, 0
        jobs = [sends.submit(q.send_message, text) for text in texts for q in queues]
        for job in jobs:
            job.result()
        return count, len(jobs)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as requests:
            start = time.perf_counter()
            done = list(requests.map(request, prepared))
            seconds = time.perf_counter() - start
    finally:
        sends.shutdown()
        service.close()
    consumed = sum(1 for _, messages in done if messages)
    return seconds, sum(c for c, _ in done), sum(m for _, m in done), consumed


@dataclass
class Phase:
    """One request size's HTTP and raw slices: results and the CPU they cost."""

    http: LoadResult = field(default_factory=LoadResult)
    raw: tuple[float, int, int] = (0.0, 0, 0)  # seconds, events, messages
    # Every process doing the work (host, stores, this load generator), per side.
    machine_cpu: dict[str, Counter[str]] = field(
        default_factory=lambda: {"http": Counter(), "raw": Counter()}
    )


def machine_cpu_seconds(host_pid: int) -> Counter[str]:
    """CPU seconds so far of the host, each store and this process (the load generator)."""
    return Counter(
        {"host": tree_cpu_seconds(host_pid), **stores_cpu_by_store(), "load": time.process_time()}
    )


def interleaved(
    resources: BenchResources,
    url: str,
    bodies: list[Body],
    concurrency: int,
    seconds: float,
    slices: int,
    label: str,
    host_pid: int,
) -> Phase:
    """HTTP ingest and the raw floor in alternating time slices (H, R, R, H, H, R, ...),
    so that both see the same shared Azurite and machine load; with the CPU seconds
    of each process doing the work (the host's among them) during each side's slices."""
    prepared = prepare(bodies)
    phase = Phase()
    http = phase.http
    raw_seconds, raw_events, raw_messages = 0.0, 0, 0
    h = r = 0
    for index in range(2 * slices):
        http_turn = index % 4 in (0, 3)
        machine_before = machine_cpu_seconds(host_pid)
        if http_turn and h < len(bodies):
            part = http_load(
                url,
                bodies[h:],
                concurrency=concurrency,
                max_seconds=seconds / slices,
                label=f"{label} slice {index // 2 + 1}/{slices}",
            )
            http.add(part)
            h += part.consumed
            phase.machine_cpu["http"].update(machine_cpu_seconds(host_pid) - machine_before)
        elif not http_turn and r < len(prepared):
            took, events, messages, consumed = raw_sends(
                resources, prepared[r:], concurrency, seconds / slices
            )
            raw_seconds += took
            raw_events += events
            raw_messages += messages
            r += consumed
            phase.machine_cpu["raw"].update(machine_cpu_seconds(host_pid) - machine_before)
    phase.raw = (raw_seconds, raw_events, raw_messages)
    return phase


def realtime_cost(
    resources: BenchResources, bodies: list[Body], label: str
) -> tuple[float, float, float, float]:
    """Median seconds per ``ingest()`` call without (A) and with (B) the real-time step,
    of the step alone (timed inside B), and the median of the paired ratios B/A."""
    sink = EventQueue(
        resources.storage, resources.ingest_queues, resources.container, resources.queue("realtime")
    )
    realtime = RealtimeRepository(resources.redis_url, resources.redis_prefix)
    step_seconds: list[float] = []

    def timed_record(events: Any, at: datetime) -> bool:
        begin = time.perf_counter()
        applied = record(realtime, events, at)
        step_seconds.append(time.perf_counter() - begin)
        if not applied:
            raise SystemExit("Redis refused the real-time update; is it running?")
        return applied

    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        # Warm up both paths (queue creation, script loading, connections).
        for body, _ in bodies[:4]:
            ingest(body, "application/json", sink, on_queued=timed_record)
        step_seconds.clear()
        step = max(1, len(bodies) // 5)
        for index, (with_realtime, (body, _)) in enumerate(alternate(bodies[4:]), start=1):
            begin = time.perf_counter()
            response = ingest(
                body, "application/json", sink, on_queued=timed_record if with_realtime else None
            )
            times[with_realtime].append(time.perf_counter() - begin)
            if response.rejected:
                raise SystemExit(f"ingest rejected events: {response.rejected[:2]}")
            if index % step == 0:
                log(f"  in-process {label}: {index}/{len(bodies) - 4} requests")
    finally:
        sink.close()
        realtime.close()
    # A and B alternate A, B, B, A, ...: pair each B with the A next to it.
    pairs = [b / a for a, b in zip(times[False], times[True], strict=False)]
    return median(times[False]), median(times[True]), median(step_seconds), median(pairs)


def plot(path: Path, results: dict[str, LoadResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for label, result in results.items():
        ms = sorted(s * 1000 for s in result.latencies)
        if ms:
            ax.plot(ms, [(i + 1) / len(ms) for i in range(len(ms))], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("request latency (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("POST /api/v1/events through devhost (loopback)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    log(f"wrote {path}")


BENCH = Bench(__doc__, seed=11, concurrency=8)
BENCH.add("--seconds", type=float, default=20.0, help="time bound per phase, HTTP and raw each")
BENCH.add("--single-requests", type=int, default=4_000, help="1-event requests")
BENCH.add("--batch-requests", type=int, default=1_000, help="100-event requests")
BENCH.add("--batch-size", type=int, default=100)
BENCH.add("--inprocess-requests", type=int, default=200, help="per request size, A and B together")
BENCH.add("--slices", type=int, default=4, help="HTTP and raw alternate in this many slices each")
BENCH.add("--plot", type=Path, help="write a latency CDF (PNG) here")


def bench(args: argparse.Namespace) -> int:
    log("generating request bodies ...")
    single = request_bodies(args.single_requests + 20, 1, args.seed)
    batch = request_bodies(args.batch_requests, args.batch_size, args.seed + 1)
    inproc_single = request_bodies(args.inprocess_requests + 4, 1, args.seed + 2)
    inproc_batch = request_bodies(args.inprocess_requests + 4, args.batch_size, args.seed + 3)

    results: dict[str, LoadResult] = {}
    with BenchResources("ingest") as resources:
        with DevhostProcess(resources, queues=False, timers=False) as host:
            url = f"{host.base_url}/api/v1/events"
            # Warm-up: queue and container creation, imports, connections.
            http_load(url, single[:20], concurrency=4, max_seconds=30, label="warm-up")
            phases: dict[str, Phase] = {}
            for label, bodies in (
                ("1-event requests", single[20:]),
                (f"{args.batch_size}-event requests", batch),
            ):
                log(f"{label}: {len(bodies)} requests max, {args.seconds:.0f} s max, each way")
                phases[label] = interleaved(
                    resources,
                    url,
                    bodies,
                    args.concurrency,
                    args.seconds,
                    args.slices,
                    label,
                    host.pid,
                )
                results[label] = phases[label].http
            one, five, _ = load_average()
            print(f"load average after the HTTP phases: {one:.2f} (1 min), {five:.2f} (5 min)")
        cost = {
            "1-event": realtime_cost(resources, inproc_single, "1-event"),
            f"{args.batch_size}-event": realtime_cost(resources, inproc_batch, "batch"),
        }
        log(f"Redis keys written under the run's prefix: {resources.redis_keys()}")

    print()
    print(f"HTTP ingest through devhost --no-queues --no-timers, {args.concurrency} connections")
    for label, result in results.items():
        report_http(label, result)
        cpu = phases[label].machine_cpu["http"]["host"]
        print(
            f"    host process CPU: {cpu / max(result.requests, 1) * 1000:.1f} ms per request, "
            f"{cpu / result.elapsed:.2f} cores busy on average"
        )
    print(
        "(0) raw floor, time slices alternated with the HTTP ones: the same envelopes, "
        "send_message to the 2 ingest queues, no HTTP/validation"
    )
    for label, phase in phases.items():
        seconds, covered, messages = phase.raw
        rate = covered / seconds
        print(
            f"{label}: {covered} events, {messages} messages in {seconds:.1f} s -> "
            f"{rate:,.0f} events/s ({messages / seconds:,.0f} messages/s); "
            f"HTTP ingest reaches {results[label].events_per_second / rate:.2f} of it"
        )
    print(
        "machine CPU per 1,000 events (host + PostgreSQL, Redis, Azurite + this load "
        "generator), each side's own slices:"
    )
    for label, phase in phases.items():
        sides = {"HTTP ingest": ("http", phase.http.accepted), "raw floor": ("raw", phase.raw[1])}
        per_event = {}
        for name, (side, events) in sides.items():
            spent = phase.machine_cpu[side]
            per_event[name] = spent.total() / max(events, 1)
            parts = ", ".join(
                f"{part} {seconds / max(events, 1) * 1e6:,.0f}" for part, seconds in spent.items()
            )
            print(f"{label}, {name}: {per_event[name] * 1e6:,.0f} ms ({parts})")
        bound = per_event["raw floor"] / per_event["HTTP ingest"]
        print(
            f"{label}: CPU per event, floor / ingest = {bound:.2f} (about the share of the "
            "floor ingest can reach while the machine's cores are the bound)"
        )
    batch_result = results[f"{args.batch_size}-event requests"]
    verdict = "met" if batch_result.events_per_second >= 5_000 else "MISSED"
    print(
        f"target >= 5,000 events/s with {args.batch_size}-event requests: {verdict} "
        f"({batch_result.events_per_second:,.0f})"
    )
    print()
    print("in-process ingest() with the real EventQueue, one request at a time, A/B alternated")
    for label, (median_a, median_b, step, paired) in cost.items():
        print(
            f"{label} requests: (A) without real-time {median_a * 1000:.2f} ms, "
            f"(B) with {median_b * 1000:.2f} ms, the step alone {step * 1000:.2f} ms; "
            f"B/A {median_b / median_a:.2f} (paired {paired:.2f}), step/A {step / median_a:.2f}"
        )
    for label, result in results.items():
        p99 = percentile(result.latencies, 0.99) * 1000
        log(f"{label}: p99 {p99:.1f} ms")
    if args.plot:
        plot(args.plot, results)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return BENCH.run(bench, argv)


if __name__ == "__main__":
    sys.exit(main())
