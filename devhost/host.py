"""`DevHost`: the host running in a background thread, for tests and the CLI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from devhost.auth import Keys
from devhost.easyauth import EasyAuthSettings
from devhost.http import route_template
from devhost.loader import FunctionSpec, load_app, unload_app
from devhost.runtime import HostRuntime, RuntimeOptions
from devhost.settings import (
    HostConfig,
    apply_local_settings,
    load_host_config,
    local_cors,
    request_body_limit,
)
from devhost.shutdown import CLOSE_MARGIN, DEFAULT_GRACE, StopReport
from devhost.timers import schedule_zone

log = logging.getLogger("devhost")


class HostStartError(RuntimeError):
    """The host could not start (bad app, bad settings, storage unreachable, port taken)."""


class DevHost:
    """Runs `function_app.py` from `app_dir` until `stop()` (or the `with` block ends).

    `environ` adds app settings for the host's lifetime (they win over the
    process environment and local.settings.json); on stop they, and the
    local.settings.json values the host added, are taken out of os.environ again.
    """

    def __init__(
        self,
        app_dir: str | Path = ".",
        *,
        host: str = "127.0.0.1",
        port: int = 7071,
        queues: bool = True,
        timers: bool = True,
        reuse_port: bool = False,
        environ: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = DEFAULT_GRACE,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self._options = RuntimeOptions(
            host=host, port=port, queues=queues, timers=timers, reuse_port=reuse_port
        )
        self._environ = dict(environ or {})
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._previous_environ: dict[str, str | None] = {}
        self._runtime: HostRuntime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_requested: asyncio.Event | None = None
        self._grace = stop_timeout
        self._stopped: concurrent.futures.Future[StopReport] = concurrent.futures.Future()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> DevHost:
        """Load the app and serve it; returns once HTTP is listening and queues exist."""
        if self._thread is not None:
            raise RuntimeError("this DevHost is already started")
        self._apply_environ()
        try:
            config = load_host_config(self.app_dir)
            cors = local_cors(self.app_dir)
            easy_auth = EasyAuthSettings.from_environ(os.environ)
            body_limit = request_body_limit(os.environ)
            loaded = load_app(self.app_dir, os.environ)
        except BaseException:
            self._restore_environ()
            raise
        runtime = HostRuntime(
            loaded,
            config,
            options=self._options,
            keys=Keys.from_environ(os.environ),
            zone=schedule_zone(os.environ),
            easy_auth=easy_auth,
            cors=cors,
            body_limit=body_limit,
        )
        try:
            self._run_in_thread(runtime)
        except BaseException:
            unload_app(loaded)
            self._restore_environ()
            raise
        self._runtime = runtime
        return self

    def stop(self, timeout: float | None = None) -> StopReport:
        """Take no new work at once, give the work in flight `timeout` seconds (default: the
        `stop_timeout` given to the constructor) to finish, then abandon it.

        Returns within timeout + ~2.5 s whatever the functions or storage are doing; the
        report (also logged) names what was abandoned and the threads still running
        function code, which cannot be stopped.
        """
        thread, loop, requested = self._thread, self._loop, self._stop_requested
        if thread is None or loop is None or requested is None:
            return StopReport()
        self._grace = self._stop_timeout if timeout is None else timeout
        waited = self._grace + CLOSE_MARGIN
        deadline = time.monotonic() + waited
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(requested.set)
        try:
            report = self._stopped.result(timeout=waited)
        except TimeoutError:
            stuck = "the host's event loop did not stop: does a coroutine function block it?"
            report = StopReport(
                (stuck,), tuple(self._runtime.busy_threads()) if self._runtime else ()
            )
        except Exception as exc:
            report = StopReport((f"stopping failed: {exc!r}",))
        thread.join(max(0.1, deadline - time.monotonic()))
        self._thread = None
        if self._runtime is not None:
            unload_app(self._runtime.loaded)
        self._restore_environ()
        for line in report.lines():
            (log.info if report.drained else log.warning)("%s", line)
        return report

    def __enter__(self) -> DevHost:
        # `with DevHost(...).start() as host:` works too.
        return self if self._thread is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests use ----------------------------------------------------------

    @property
    def port(self) -> int:
        return self._running.port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: admin routes hang off this."""
        return f"http://{self._options.host}:{self.port}"

    def url(self, route: str) -> str:
        """The URL of an HTTP route, with host.json's route prefix: url("v1/x") -> .../api/v1/x."""
        return f"{self.base_url}/{route_template(self.config.route_prefix, route)}"

    @property
    def config(self) -> HostConfig:
        return self._running.config

    @property
    def app_module(self) -> ModuleType:
        """The imported function_app module (to inspect state a sample app keeps)."""
        return self._running.loaded.module

    @property
    def functions(self) -> list[FunctionSpec]:
        return self._running.loaded.functions

    @property
    def errors(self) -> dict[str, str]:
        """Functions found but not runnable here, with the reason."""
        return self._running.loaded.errors

    def describe(self) -> list[str]:
        """One line per function, as printed at start-up."""
        return self._running.describe()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no invocation is in flight and every trigger queue is empty.

        Raises TimeoutError (naming what is still busy) after `timeout` seconds.
        """
        self._call(self._running.wait_idle(timeout))

    # -- internals ---------------------------------------------------------------

    @property
    def _running(self) -> HostRuntime:
        if self._runtime is None or self._thread is None:
            raise RuntimeError("the DevHost is not running; call start() first")
        return self._runtime

    def _call(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _run_in_thread(self, runtime: HostRuntime) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._stopped = concurrent.futures.Future()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop_requested = asyncio.Event()
            try:
                await runtime.start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            await self._stop_requested.wait()
            try:
                self._stopped.set_result(await runtime.stop(self._grace))
            except BaseException as exc:
                self._stopped.set_exception(exc)
                raise

        # A daemon thread: a host a test forgot to stop must not keep the process alive.
        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="devhost", daemon=True
        )
        self._thread.start()
        if not ready.wait(self._start_timeout):
            raise HostStartError(f"devhost did not start within {self._start_timeout}s")
        if failure:
            self._thread.join()
            self._thread = None
            raise HostStartError(f"devhost could not start: {failure[0]}") from failure[0]

    def _apply_environ(self) -> None:
        for name, value in self._environ.items():
            self._previous_environ[name] = os.environ.get(name)
            os.environ[name] = value
        for name in apply_local_settings(self.app_dir, os.environ):
            self._previous_environ.setdefault(name, None)

    def _restore_environ(self) -> None:
        for name, value in self._previous_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._previous_environ.clear()
