"""The benchmark harness: what every scripts/bench_*.py plugs into.

Its modules: ``report`` (``Bench``, ``log``, ``progress``, figures), ``resources``
(``BenchResources``), ``devhost`` (``DevhostProcess``), ``load`` (``http_load``).

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

from scripts.benchlib.devhost import ROOT, DevhostProcess, free_port
from scripts.benchlib.load import LoadResult, http_load
from scripts.benchlib.report import (
    Bench,
    latency_summary,
    load_average,
    log,
    machine,
    median,
    percentile,
    process_cpu_seconds,
    progress,
    stores_cpu_by_store,
    stores_cpu_seconds,
    tree_cpu_seconds,
)
from scripts.benchlib.resources import STORES, BenchResources

__all__ = (
    "ROOT",
    "STORES",
    "Bench",
    "BenchResources",
    "DevhostProcess",
    "LoadResult",
    "free_port",
    "http_load",
    "latency_summary",
    "load_average",
    "log",
    "machine",
    "median",
    "percentile",
    "process_cpu_seconds",
    "progress",
    "stores_cpu_by_store",
    "stores_cpu_seconds",
    "tree_cpu_seconds",
)
