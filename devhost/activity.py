"""What the host is busy with, so a caller can wait until it has nothing left to do."""

from __future__ import annotations

import asyncio
import contextlib
import time


class Activity:
    """Invocations and queue messages in flight, and when the last one finished.

    Lives on the host's event loop; only touched from there.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self.last_finished = time.monotonic()
        self._changed = asyncio.Event()

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1
        self.last_finished = time.monotonic()
        self._changed.set()

    def notify(self) -> None:
        """Something an idle-waiter cares about happened (say, a queue was seen empty)."""
        self._changed.set()

    async def changed(self, timeout: float) -> None:
        """Return at the next change, or after `timeout` seconds."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
