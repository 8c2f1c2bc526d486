"""The benchmark harness: what every scripts/bench_*.py plugs into.

- ``Bench``: the command line (the options every benchmark shares: ``--seed``,
  and ``--events``, ``--concurrency`` where it has them) and the report's
  frame: the machine and its load average before the figures, the load
  average again after them. Figures go to stdout (``print``), progress to
  stderr (``log``, ``progress``).
- ``BenchResources``: names of its own for everything a run touches (a
  PostgreSQL database, created and migrated; a Redis key prefix; queues, a
  blob container and an archive table prefix), the environment that points the
  app at them, and a teardown that removes all of it; ``uses`` limits it to
  the stores a benchmark needs.
- ``DevhostProcess``: ``python -m devhost`` in a subprocess on a free loopback
  port with that environment, stopped (SIGTERM, then SIGKILL) at the end.
- ``http_load``: a bounded aiohttp load (count and time) with latencies.
- small helpers: percentiles, the machine's description, progress lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import psycopg
import redis
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from shared.migrate import migrate
from shared.repositories.archive import REF_SUFFIX, ArchiveRepository
from shared.settings import DEV_STORAGE, get_settings

ROOT = Path(__file__).resolve().parent.parent


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        try:
            return body(args) or 0
        finally:
            one, five, fifteen = load_average()
            print(f"load average at the end: {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)")


STORES = frozenset({"database", "redis", "storage"})


@dataclass
class BenchResources:
    """Everything one benchmark run creates, under names of its own."""

    label: str
    server_dsn: str = field(default_factory=lambda: get_settings().postgres_dsn)
    storage: str = field(default_factory=lambda: get_settings().storage_connection)
    redis_url: str = field(default_factory=lambda: get_settings().redis_url)
    bucket_seconds: int = 60
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    # The stores the run touches (and so creates and cleans up): a subset of STORES.
    uses: frozenset[str] = STORES

    @property
    def database(self) -> str:
        return f"bench_{self.label}_{self.token}"

    @property
    def dsn(self) -> str:
        return make_conninfo(self.server_dsn, dbname=self.database)

    @property
    def admin_dsn(self) -> str:
        return make_conninfo(self.server_dsn, dbname="postgres")

    @property
    def redis_prefix(self) -> str:
        return f"bench:{self.label}:{self.token}:"

    def queue(self, sink: str) -> str:
        return f"bench-{self.label}-{self.token}-{sink}"

    @property
    def queues(self) -> list[str]:
        """Every queue of the run (all are deleted at the end)."""
        return [self.queue(sink) for sink in ("persist", "archive", "realtime")]

    @property
    def ingest_queues(self) -> list[str]:
        """The queues ingest writes on every request (realtime only as catch-up)."""
        return [self.queue(sink) for sink in ("persist", "archive")]

    @property
    def container(self) -> str:
        return self.queue("payloads")

    @property
    def table_prefix(self) -> str:
        return f"bench{self.label}{self.token}"

    @property
    def storage_names(self) -> str:
        return f"queues/container bench-{self.label}-{self.token}-*, tables {self.table_prefix}*"

    def environ(self) -> dict[str, str]:
        """The app's settings for this run (function keys off: no auth on loopback)."""
        return {
            "AzureWebJobsStorage": self.storage,
            "ARCHIVE_STORAGE_CONNECTION": self.storage,
            "POSTGRES_DSN": self.dsn,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.redis_prefix,
            "PERSIST_QUEUE": self.queue("persist"),
            "ARCHIVE_QUEUE": self.queue("archive"),
            "REALTIME_QUEUE": self.queue("realtime"),
            "PAYLOAD_CONTAINER": self.container,
            "ARCHIVE_TABLE_PREFIX": self.table_prefix,
            "ROLLUP_BUCKET_SECONDS": str(self.bucket_seconds),
            "LOCAL_FUNCTION_KEY": "",
            "LOCAL_MASTER_KEY": "",
        }

    def setup(self) -> BenchResources:
        if "database" in self.uses:
            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
            log(f"created database {self.database}")
            migrate(self.dsn)
        if "redis" in self.uses:
            log(f"Redis prefix {self.redis_prefix!r}")
        if "storage" in self.uses:
            log(f"storage: {self.storage_names}")
        return self

    def delete_tables(self) -> None:
        """Every archive table of the run (they all start with ``table_prefix``)."""
        service = TableServiceClient.from_connection_string(self.storage)
        try:
            for table in list(service.list_tables()):
                if table.name.startswith(self.table_prefix):
                    service.delete_table(table.name)
        finally:
            service.close()

    def redis_keys(self) -> int:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return sum(1 for _ in client.scan_iter(match=self.redis_prefix + "*", count=10_000))
        finally:
            client.close()

    def archive(self) -> ArchiveRepository:
        return ArchiveRepository(self.storage, self.table_prefix)

    def count_archived_events(self, archive: ArchiveRepository) -> int:
        """Actor entities (one per event) in this run's archive tables; references left out."""
        service = TableServiceClient.from_connection_string(self.storage)
        try:
            return sum(
                1
                for table in archive.list_archive_tables()
                for entity in service.get_table_client(table).list_entities(select=["RowKey"])
                if not str(entity["RowKey"]).endswith(REF_SUFFIX)
            )
        finally:
            service.close()

    def teardown(self) -> None:
        """Remove the database, Redis keys, queues (and poison queues), container, tables."""
        problems: list[str] = []

        def attempt(what: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as exc:  # keep removing the rest, report at the end
                problems.append(f"{what}: {exc}")

        def drop_database() -> None:
            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)
                    )
                )

        def delete_redis_keys() -> None:
            client = redis.Redis.from_url(self.redis_url)
            try:
                batch: list[bytes] = []
                for key in client.scan_iter(match=self.redis_prefix + "*", count=10_000):
                    batch.append(key)
                    if len(batch) >= 10_000:
                        client.unlink(*batch)
                        batch = []
                if batch:
                    client.unlink(*batch)
            finally:
                client.close()

        def delete_queues() -> None:
            service = QueueServiceClient.from_connection_string(self.storage)
            try:
                for name in self.queues:
                    for queue in (name, f"{name}-poison"):
                        with suppress(ResourceNotFoundError):
                            service.delete_queue(queue)
            finally:
                service.close()

        def delete_container() -> None:
            service = BlobServiceClient.from_connection_string(self.storage)
            try:
                with suppress(ResourceNotFoundError):
                    service.delete_container(self.container)
            finally:
                service.close()

        removed = []
        if "database" in self.uses:
            attempt("database", drop_database)
            removed.append(f"database {self.database}")
        if "redis" in self.uses:
            attempt("redis keys", delete_redis_keys)
            removed.append(f"Redis keys {self.redis_prefix}*")
        if "storage" in self.uses:
            attempt("queues", delete_queues)
            attempt("container", delete_container)
            attempt("tables", self.delete_tables)
            removed.append(self.storage_names)
        if problems:
            log("cleanup problems: " + "; ".join(problems))
        else:
            log("removed " + ", ".join(removed))

    def __enter__(self) -> BenchResources:
        try:
            return self.setup()
        except BaseException:
            self.teardown()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()


class DevhostProcess:
    """``python -m devhost`` in a subprocess, on a free loopback port."""

    def __init__(
        self,
        resources: BenchResources,
        *,
        queues: bool,
        timers: bool = False,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._resources = resources
        self._queues = queues
        self._timers = timers
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = (
            Path(tempfile.gettempdir()) / f"bench-devhost-{resources.label}-{resources.token}.log"
        )

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def log_path(self) -> Path:
        """Where the host's output goes (removed when it stops)."""
        return self._log_path

    def start(self) -> DevhostProcess:
        args = [sys.executable, "-m", "devhost", "--port", str(self.port), "--host", "127.0.0.1"]
        if not self._queues:
            args.append("--no-queues")
        if not self._timers:
            args.append("--no-timers")
        env = os.environ | self._resources.environ()
        if env.get("AzureWebJobsStorage") == "":
            env["AzureWebJobsStorage"] = DEV_STORAGE
        with open(self._log_path, "wb") as output:
            self._process = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"devhost exited at start:\n{self.log_tail()}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                log(f"devhost pid {self._process.pid} on {self.base_url} (log {self._log_path})")
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"devhost did not listen within {self._start_timeout:.0f} s")

    def log_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        with suppress(OSError):
            self._log_path.unlink()

    def __enter__(self) -> DevhostProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            tail = self.log_tail()
            if tail:
                log(f"devhost log tail:\n{tail}")
        self.stop()


@dataclass
class LoadResult:
    requests: int = 0
    events: int = 0
    accepted: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    consumed: int = 0  # bodies taken (answered or failed)

    def add(self, other: LoadResult) -> None:
        """Fold in another slice of the same load."""
        self.requests += other.requests
        self.events += other.events
        self.accepted += other.accepted
        self.elapsed += other.elapsed
        self.latencies.extend(other.latencies)
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.errors += other.errors
        self.consumed += other.consumed

    @property
    def events_per_second(self) -> float:
        return self.accepted / self.elapsed if self.elapsed else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


async def _load(
    url: str,
    bodies: Sequence[tuple[bytes, int]],
    concurrency: int,
    max_seconds: float,
    label: str,
) -> LoadResult:
    result = LoadResult()
    next_index = 0
    report = progress(f"{label}: requests", len(bodies))
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    start = time.perf_counter()
    deadline = start + max_seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < len(bodies) and time.perf_counter() < deadline:
            body, events = bodies[next_index]
            next_index += 1
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    document: Any = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                result.errors += 1
                continue
            result.latencies.append(time.perf_counter() - sent)
            result.requests += 1
            result.events += events
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == 202 and isinstance(document, dict):
                result.accepted += int(document.get("accepted", 0))
            report(result.requests)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    result.consumed = next_index
    return result


def http_load(
    url: str,
    bodies: Sequence[tuple[bytes, int]],
    *,
    concurrency: int,
    max_seconds: float,
    label: str,
) -> LoadResult:
    """POST each ``(body, event count)`` once with ``concurrency`` connections.

    Stops after the last body or after ``max_seconds``, whichever comes first.
    """
    return asyncio.run(_load(url, bodies, concurrency, max_seconds, label))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
