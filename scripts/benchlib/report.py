"""The report and the command line.

Figures go to stdout, progress to stderr (``log``, ``progress``); the machine and
its load average, percentiles; ``Bench``, the frame every benchmark runs in.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any


def log(message: str) -> None:
    """Progress goes to stderr, figures to stdout."""
    print(message, file=sys.stderr, flush=True)


def progress(label: str, total: int, steps: int = 10) -> Callable[[int], None]:
    """A callback taking the count done so far; logs it every ``total / steps`` and at the end."""
    step = max(1, total // steps)

    def report(done: int) -> None:
        if done % step == 0 or done == total:
            log(f"  {label}: {done}/{total}")

    return report


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"p50 {percentile(ms, 0.5):.1f} ms, p90 {percentile(ms, 0.9):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms, default=float('nan')):.1f} ms"
    )


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> str:
    """Cores, CPU model, RAM and the current load average."""
    model = "unknown CPU"
    with suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = "? GB"
    with suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
                break
    one, five, fifteen = load_average()
    return (
        f"{os.cpu_count()} cores, {model}, {ram} RAM, "
        f"load average {one:.2f} {five:.2f} {fifteen:.2f}"
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces; the fields after it are fixed.
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of every process below it (the local host's workers)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += process_cpu_seconds(current)
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended in between
    return total


def stores_cpu_by_store() -> dict[str, float]:
    """CPU seconds used so far by the machine's PostgreSQL, Redis and Azurite processes,
    per store (those alive now; a process that ended in between is not counted)."""
    totals = {"postgres": 0.0, "redis": 0.0, "azurite": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ")
            if command.startswith((b"postgres", b"/usr/lib/postgresql")):
                store = "postgres"
            elif b"redis-server" in command:
                store = "redis"
            elif b"azurite" in command:
                store = "azurite"
            else:
                continue
            totals[store] += process_cpu_seconds(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return totals


def stores_cpu_seconds() -> float:
    """CPU seconds used so far by the machine's PostgreSQL, Redis and Azurite processes."""
    return sum(stores_cpu_by_store().values())


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Bench:
    """A benchmark's command line and the frame of its report.

    ``Bench(__doc__, seed=7, events=50_000)`` makes the parser with the shared
    options (``--seed`` always; ``--events`` and ``--concurrency`` when given
    a default); ``add`` adds the benchmark's own; ``run(body)`` parses, prints
    the machine and its load average, runs ``body(args)`` (which prints the
    figures) and prints the load average at the end, also after a failure.
    """

    def __init__(
        self,
        doc: str | None,
        *,
        seed: int,
        events: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.parser = argparse.ArgumentParser(
            prog=f"python -m scripts.{Path(sys.argv[0]).stem}",
            description=(doc or "").split("\n\n")[0],
            epilog="Figures go to stdout, progress to stderr.",
        )
        self.add("--seed", type=int, default=seed, help="random seed: the same seed, the same data")
        if events is not None:
            self.add("--events", type=int, default=events, help="events generated")
        if concurrency is not None:
            self.add("--concurrency", type=int, default=concurrency, help="concurrent requests")

    def add(self, *names: str, **options: Any) -> None:
        self.parser.add_argument(*names, **options)

    def run(
        self, body: Callable[[argparse.Namespace], int | None], argv: Sequence[str] | None = None
    ) -> int:
        args = self.parser.parse_args(argv)
        print(f"machine: {machine()}", flush=True)
        workers = os.environ.get("FUNCTIONS_WORKER_PROCESS_COUNT", "1")
        print(f"local host worker processes (FUNCTIONS_WORKER_PROCESS_COUNT): {workers}")
        try:
            return body(args) or 0
        finally:
            one, five, fifteen = load_average()
            print(f"load average at the end: {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)")
