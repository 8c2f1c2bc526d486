"""``http_load``: a bounded aiohttp load (a count and a time) with its latencies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from scripts.benchlib.report import progress


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
