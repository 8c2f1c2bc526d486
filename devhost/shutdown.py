"""Shutdown: the work in flight, the grace period it gets, and what had to be abandoned.

On stop the host first takes no new work (listeners closed, pollers and timers
stopped), without waiting on storage or on any function. The work already in
flight (HTTP requests, queue messages, timer and admin-API runs) then gets a
grace period. Whatever is still running after it is cancelled and reported:
a queue message is simply not deleted, so the queue delivers it again once
its lease ends; a synchronous function's thread runs on, since a Python
thread cannot be stopped (the CLI exits without it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The grace period work in flight gets, unless --shutdown-grace / DEVHOST_SHUTDOWN_GRACE say.
DEFAULT_GRACE = 10.0
GRACE_SETTING = "DEVHOST_SHUTDOWN_GRACE"
# After the grace period: how long cancelled work gets to unwind, and how long closing the
# server and the storage clients may take. Together they bound a stop at grace + 2.5 s.
CANCEL_WAIT = 0.5
CLOSE_TIMEOUT = 1.0
CLOSE_MARGIN = CANCEL_WAIT + 2 * CLOSE_TIMEOUT


def grace_from_environ(environ: Mapping[str, str]) -> float:
    """DEVHOST_SHUTDOWN_GRACE (seconds), else the default; ValueError when unusable."""
    text = environ.get(GRACE_SETTING, "").strip()
    if not text:
        return DEFAULT_GRACE
    return parse_grace(text)


def parse_grace(text: str) -> float:
    seconds = float(text)
    if not seconds >= 0:  # also refuses NaN
        raise ValueError(f"the shutdown grace period must be >= 0 seconds, not {text!r}")
    return seconds


@dataclass(frozen=True)
class StopReport:
    """How a stop went: the work abandoned after the grace period, threads left running."""

    abandoned: tuple[str, ...] = ()
    # Threads still running function code: they cannot be stopped, only left behind.
    threads: tuple[str, ...] = ()

    @property
    def drained(self) -> bool:
        return not self.abandoned and not self.threads

    def lines(self) -> list[str]:
        """What to log, one line each."""
        if self.drained:
            return ["Shutdown: all work in flight finished."]
        return [f"Shutdown: abandoned {item}" for item in self.abandoned] + [
            f"Shutdown: {thread} (a Python thread cannot be stopped)" for thread in self.threads
        ]


@dataclass(eq=False)
class _Work:
    label: str
    note: Callable[[], str] | None
    task: asyncio.Task[Any]
    started: float

    def describe(self, now: float) -> str:
        text = f"{self.label}, running for {now - self.started:.1f}s"
        return f"{text}: {self.note()}" if self.note is not None else text


class InFlight:
    """The work the host must let finish at shutdown, one entry per request, message or run.

    Lives on the host's event loop; only touched from there.
    """

    def __init__(self) -> None:
        self._work: dict[asyncio.Future[Any], _Work] = {}

    def __len__(self) -> int:
        return len(self._work)

    def add(
        self, task: asyncio.Task[Any], label: str, note: Callable[[], str] | None = None
    ) -> None:
        """Count `task` as in flight until it ends (see `track`)."""
        self._work[task] = _Work(label, note, task, task.get_loop().time())
        task.add_done_callback(self._discard)

    def _discard(self, task: asyncio.Future[Any]) -> None:
        self._work.pop(task, None)

    @contextlib.contextmanager
    def track(self, label: str, note: Callable[[], str] | None = None) -> Iterator[None]:
        """Count the current task as in flight inside the `with`; at shutdown, past the
        grace period, that task is cancelled and reported as `label` (+ `note()`)."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._work[done] = _Work(label, note, task, loop.time())
        try:
            yield
        finally:
            del self._work[done]
            done.set_result(None)

    async def drain(self, deadline: float) -> list[str]:
        """Wait until nothing is in flight or the loop's clock reaches `deadline`; then
        cancel what is left and return its descriptions."""
        loop = asyncio.get_running_loop()
        while self._work and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(
                list(self._work), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        left = dict(self._work)
        now = loop.time()
        abandoned = [work.describe(now) for work in left.values()]
        for work in left.values():
            work.task.cancel()
        if left:
            # Bounded: a coroutine that swallows the cancellation is left behind.
            await asyncio.wait(list(left), timeout=CANCEL_WAIT)
        return abandoned
