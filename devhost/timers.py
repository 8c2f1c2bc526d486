"""Timer triggers: run each timer function at its schedule's occurrences.

As in the host's timer listener, the next occurrence is computed after each
run finishes (runs never overlap; occurrences missed meanwhile are skipped)
and `runOnStartup` runs the function once when the host starts. Schedules are
in UTC unless `WEBSITE_TIME_ZONE` names an IANA zone. The real host persists
schedule status in storage to detect occurrences missed while it was down;
this host keeps none (`use_monitor` has no effect), so `past_due` is only
true for a run that started more than a second late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.functions.timer import TimerRequest

from devhost.invoker import Invocation, Invoker
from devhost.loader import FunctionSpec, TimerTrigger
from devhost.shutdown import InFlight

log = logging.getLogger("devhost")

PAST_DUE_AFTER = timedelta(seconds=1)


def schedule_zone(environ: Mapping[str, str]) -> tzinfo:
    """The zone schedules are read in: WEBSITE_TIME_ZONE (IANA names only) or UTC."""
    name = environ.get("WEBSITE_TIME_ZONE")
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("WEBSITE_TIME_ZONE=%r is not an IANA time zone; using UTC", name)
        return UTC


def timer_request(
    *, past_due: bool, last: datetime | None = None, next_at: datetime | None = None
) -> Any:
    """The `TimerRequest` the worker builds from the host's timer info."""
    now = datetime.now(UTC)
    status = {
        "Last": (last or now).isoformat(),
        "Next": (next_at or now).isoformat(),
        "LastUpdated": now.isoformat(),
    }
    return TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})


class TimerRunner:
    """Fires one timer function on its schedule."""

    def __init__(
        self, fn: FunctionSpec, *, invoker: Invoker, zone: tzinfo, in_flight: InFlight
    ) -> None:
        assert isinstance(fn.trigger, TimerTrigger)
        self.fn = fn
        self._trigger = fn.trigger
        self._invoker = invoker
        self._in_flight = in_flight
        self._zone = zone
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"timer {self.fn.name}")

    def stop_scheduling(self) -> asyncio.Task[None] | None:
        """Fire no more; returns the task, which ends once a run in progress (in the host's
        InFlight) finishes."""
        self._stop.set()
        return self._task

    async def _run(self) -> None:
        last: datetime | None = None
        if self._trigger.run_on_startup:
            await self._fire(timer_request(past_due=False), "Timer fired on startup")
            last = datetime.now(self._zone)
        while not self._stop.is_set():
            next_at = self._trigger.schedule.next_after(datetime.now(self._zone))
            if not await self._sleep_until(next_at):
                return
            late = timedelta(seconds=-_seconds_until(next_at))
            upcoming = self._trigger.schedule.next_after(next_at)
            request = timer_request(past_due=late > PAST_DUE_AFTER, last=last, next_at=upcoming)
            await self._fire(request, f"Timer fired at {next_at.isoformat()}")
            last = next_at

    async def _sleep_until(self, moment: datetime) -> bool:
        """Wait for the wall clock to reach `moment`; False when stopped first."""
        while (remaining := _seconds_until(moment)) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), remaining)
            if self._stop.is_set():
                return False
        return True

    async def _fire(self, request: Any, reason: str) -> Invocation:
        # A failed run is logged by the invoker; the schedule simply goes on.
        with self._in_flight.track(f"timer run of Functions.{self.fn.name}"):
            return await self._invoker.invoke(self.fn, request, reason=reason)


def _seconds_until(moment: datetime) -> float:
    # Through UTC: subtracting two times of one zone ignores a DST change between them.
    return (moment.astimezone(UTC) - datetime.now(UTC)).total_seconds()
