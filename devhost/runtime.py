"""The running host on one event loop: HTTP server, queue pollers, timers, idle detection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from aiohttp import web

from devhost.activity import Activity
from devhost.admin import AdminApi
from devhost.auth import Keys
from devhost.cors import Cors
from devhost.easyauth import LOGIN_PATH, TRUST_SETTING, EasyAuth, EasyAuthSettings
from devhost.http import HttpFrontend, make_server, route_template, start_server, stop_listening
from devhost.invoker import Invoker, make_executor
from devhost.loader import HttpTrigger, LoadedApp, QueueTrigger, TimerTrigger
from devhost.queues import QueueClients, QueueOutputWriter, QueuePoller
from devhost.settings import DEFAULT_BODY_LIMIT, CorsSettings, HostConfig
from devhost.shutdown import CANCEL_WAIT, CLOSE_TIMEOUT, InFlight, StopReport
from devhost.timers import TimerRunner

log = logging.getLogger("devhost")


@dataclass(frozen=True)
class RuntimeOptions:
    host: str = "127.0.0.1"
    port: int = 7071
    queues: bool = True
    timers: bool = True
    reuse_port: bool = False  # one of several worker processes on the same port


class HostRuntime:
    """Owns everything that runs; create, `await start()`, later `await stop()`, same loop."""

    def __init__(
        self,
        loaded: LoadedApp,
        config: HostConfig,
        *,
        options: RuntimeOptions,
        keys: Keys,
        zone: tzinfo,
        easy_auth: EasyAuthSettings | None = None,
        cors: CorsSettings | None = None,
        body_limit: int = DEFAULT_BODY_LIMIT,
    ) -> None:
        self.loaded = loaded
        self.config = config
        self.options = options
        self.port = options.port
        self._keys = keys
        self._zone = zone
        self._easy_auth = easy_auth or EasyAuthSettings()
        self._cors = cors
        self._body_limit = body_limit
        self._idle_waiters = 0
        self._runner: web.ServerRunner | None = None
        self.pollers: list[QueuePoller] = []
        self.timers: list[TimerRunner] = []

    async def start(self) -> None:
        self.activity = Activity()
        self.in_flight = InFlight()
        self._executor = make_executor()
        self._clients = QueueClients()
        writer = QueueOutputWriter(
            self._clients, self.config.queues.message_encoding, self._wake_queue
        )
        self._invoker = invoker = Invoker(
            executor=self._executor,
            activity=self.activity,
            write_queue=writer,
            function_timeout=self.config.function_timeout,
        )
        functions = self.loaded.functions
        self._admin = AdminApi(
            functions,
            errors=self.loaded.errors,
            keys=self._keys,
            invoker=invoker,
            activity=self.activity,
            in_flight=self.in_flight,
        )
        self._frontend = frontend = HttpFrontend(
            functions,
            route_prefix=self.config.route_prefix,
            keys=self._keys,
            invoker=invoker,
            admin=self._admin,
            easy_auth=EasyAuth(self._easy_auth),
            in_flight=self.in_flight,
            cors=Cors(self._cors) if self._cors is not None else None,
            body_limit=self._body_limit,
        )
        if self._easy_auth.trust_client:
            log.warning(
                "!!! %s=1: X-MS-CLIENT-PRINCIPAL headers sent by the client reach the "
                "functions unchecked, so any caller can claim to be anyone. For tests only; "
                "to sign in, use %s instead. !!!",
                TRUST_SETTING,
                LOGIN_PATH,
            )
        if self.options.queues:
            self.pollers = [
                QueuePoller(
                    fn,
                    self.config.queues,
                    clients=self._clients,
                    invoker=invoker,
                    activity=self.activity,
                    in_flight=self.in_flight,
                    eager=lambda: self._idle_waiters > 0,
                )
                for fn in functions
                if isinstance(fn.trigger, QueueTrigger)
            ]
        if self.options.timers:
            self.timers = [
                TimerRunner(fn, invoker=invoker, zone=self._zone, in_flight=self.in_flight)
                for fn in functions
                if isinstance(fn.trigger, TimerTrigger)
            ]
        try:
            # Queues first, so that a caller can send messages as soon as start() returns.
            for poller in self.pollers:
                await poller.prepare()
            self._runner, self.port = await start_server(
                make_server(frontend),
                self.options.host,
                self.options.port,
                reuse_port=self.options.reuse_port,
            )
        except BaseException:
            await self._clients.close()
            self._executor.shutdown(wait=False)
            raise
        for poller in self.pollers:
            poller.start()
        for timer in self.timers:
            timer.start()

    async def stop(self, grace: float) -> StopReport:
        """Take no new work at once, give the work in flight `grace` seconds, then cancel
        what is left and close everything; returns within grace + CLOSE_MARGIN seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # Nothing in this first step waits on storage, on a client or on a function.
        self._frontend.stopping = True
        if self._runner is not None:
            await stop_listening(self._runner)
        loops = [p.stop_polling() for p in self.pollers] + [
            t.stop_scheduling() for t in self.timers
        ]
        if self.in_flight:
            log.info(
                "Waiting up to %gs for %d request(s), message(s) and run(s) in flight",
                grace,
                len(self.in_flight),
            )
        abandoned = await self.in_flight.drain(deadline)
        tasks = [task for task in loops if task is not None]
        if tasks:
            # Timers whose run was cancelled end with it, the others return once told to.
            await asyncio.wait(tasks, timeout=CANCEL_WAIT)
        if self._runner is not None:
            await _bounded(self._runner.cleanup(), "closing the HTTP server")
        await _bounded(self._clients.close(), "closing the storage clients")
        # Queued calls are dropped; threads running function code cannot be stopped.
        self._executor.shutdown(wait=False, cancel_futures=True)
        return StopReport(tuple(abandoned), tuple(self._invoker.busy_threads()))

    def busy_threads(self) -> list[str]:
        """Threads running function code (callable from any thread)."""
        return self._invoker.busy_threads()

    async def wait_idle(self, timeout: float) -> None:
        """Return once nothing is in flight and every trigger queue was seen empty since.

        "Empty" counts invisible messages too (a failed one waiting for its retry),
        and every poll must have started after the last piece of work finished,
        so messages that one function queued for another are waited for as well.
        """
        deadline = time.monotonic() + timeout
        called_at = time.monotonic()
        self._idle_waiters += 1
        try:
            for poller in self.pollers:
                poller.wake()  # a poller in a long back-off looks again now
            while not self._idle(called_at):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"host not idle after {timeout}s: {self._busy(called_at)}")
                await self.activity.changed(min(remaining, 0.5))
        finally:
            self._idle_waiters -= 1

    def _idle(self, called_at: float) -> bool:
        if self.activity.in_flight:
            return False
        since = max(called_at, self.activity.last_finished)
        return all(p.confirmed_empty_at >= since for p in self.pollers)

    def _busy(self, called_at: float) -> str:
        since = max(called_at, self.activity.last_finished)
        waiting = [p.queue_name for p in self.pollers if p.confirmed_empty_at < since]
        return (
            f"{self.activity.in_flight} invocation(s) and queue message(s) in flight, "
            f"queues not seen empty: {waiting}"
        )

    def _wake_queue(self, queue_name: str) -> None:
        # A function just wrote to this queue: its poller looks now (the host's queue watcher).
        for poller in self.pollers:
            if poller.queue_name == queue_name:
                poller.wake()

    def describe(self, public_host: str = "localhost") -> list[str]:
        """The function list func start prints."""
        lines = []
        base = f"http://{public_host}:{self.port}"
        for fn in self.loaded.functions:
            trigger = fn.trigger
            if isinstance(trigger, HttpTrigger):
                methods = f"[{','.join(sorted(trigger.methods))}] " if trigger.methods else ""
                url = f"{base}/{route_template(self.config.route_prefix, trigger.route)}"
                lines.append(f"{fn.name}: {methods}{url}")
            elif isinstance(trigger, QueueTrigger):
                lines.append(f"{fn.name}: queueTrigger (queue: {trigger.queue_name})")
            else:
                lines.append(f"{fn.name}: timerTrigger (schedule: {trigger.schedule.expression})")
        lines.extend(f"{name}: NOT RUNNING: {why}" for name, why in self.loaded.errors.items())
        return lines


async def _bounded(closing: Coroutine[Any, Any, None], what: str) -> None:
    # A close that hangs (a connection to a frozen emulator) must not hold up the exit.
    try:
        await asyncio.wait_for(closing, CLOSE_TIMEOUT)
    except TimeoutError:
        log.warning("Shutdown: gave up %s after %gs", what, CLOSE_TIMEOUT)
    except Exception:
        log.exception("Shutdown: %s failed", what)
