"""Call a user function the way the Python worker does.

Synchronous functions run in a thread pool (sized like the worker's:
`PYTHON_THREADPOOL_THREAD_COUNT`, else Python's default), coroutine functions
run on the host's event loop. Parameters are filled by binding name: the
trigger, one `func.Out` per named output binding, and `context` when the
function asks for it. Output bindings are written only when the function
succeeds; a failure is logged with its traceback, as the host logs it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import azure.functions as func
from azure.functions._abc import TraceContext

from devhost.activity import Activity
from devhost.loader import RETURN, FunctionSpec, HttpOutput, QueueOutput
from devhost.timespan import format_timespan

log = logging.getLogger("devhost")

# What the host logs as the reason for HTTP and admin-API invocations.
HOST_API_REASON = "This function was programmatically called via the host APIs."


class FunctionTimeoutError(Exception):
    """The function ran longer than host.json's functionTimeout."""


class QueueWriter(Protocol):
    def __call__(self, output: QueueOutput, value: Any) -> Awaitable[None]: ...


def make_executor() -> ThreadPoolExecutor:
    """The worker's thread pool for synchronous functions."""
    configured = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    workers = int(configured) if configured else None
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devhost-fn")


class OutValue(func.Out[Any]):
    """The value a function sets on an output binding parameter."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    """`context` for functions that take one."""

    def __init__(self, invocation_id: str, function_name: str, directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._directory = directory
        self._local = threading.local()
        self._local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> Any:
        return None  # retry policies are not supported by this host


@dataclass(frozen=True)
class Invocation:
    """How an invocation ended; `http_response` is what an HTTP function answered."""

    succeeded: bool
    http_response: Any = None
    error: BaseException | None = field(default=None, repr=False)


class Invoker:
    def __init__(
        self,
        *,
        executor: ThreadPoolExecutor,
        activity: Activity,
        write_queue: QueueWriter,
        function_timeout: timedelta | None,
    ) -> None:
        self._executor = executor
        self._activity = activity
        self._write_queue = write_queue
        self._timeout = function_timeout.total_seconds() if function_timeout else None
        # thread name -> function name, while a pool thread runs a synchronous function
        self._threads: dict[str, str] = {}

    def busy_threads(self) -> list[str]:
        """The pool threads running function code now (safe to call from any thread)."""
        running = dict(self._threads)  # one atomic copy: the pool threads change it
        return [f"thread '{name}' is still running Functions.{fn}" for name, fn in running.items()]

    async def invoke(self, fn: FunctionSpec, trigger_value: Any, *, reason: str) -> Invocation:
        invocation_id = str(uuid.uuid4())
        outs = {o.name: OutValue() for o in fn.outputs if o.name != RETURN}
        kwargs: dict[str, Any] = {fn.trigger_param: trigger_value, **outs}
        if fn.wants_context:
            kwargs["context"] = InvocationContext(invocation_id, fn.name, fn.directory)
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.name, reason, invocation_id)
        started = time.perf_counter()
        self._activity.begin()
        try:
            returned = await self._call(fn, kwargs)
            response = None
            for output in fn.outputs:
                value = returned if output.name == RETURN else outs[output.name].get()
                if isinstance(output, QueueOutput):
                    await self._write_queue(output, value)
                elif isinstance(output, HttpOutput):
                    response = value
        except asyncio.CancelledError:
            # The host is stopping and the grace period is over.
            log.warning(
                "Executed 'Functions.%s' (Cancelled, Id=%s, Duration=%dms)",
                fn.name,
                invocation_id,
                _elapsed_ms(started),
            )
            raise
        except Exception as exc:
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                fn.name,
                invocation_id,
                _elapsed_ms(started),
                exc_info=exc,
            )
            return Invocation(succeeded=False, error=exc)
        finally:
            self._activity.end()
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            fn.name,
            invocation_id,
            _elapsed_ms(started),
        )
        return Invocation(succeeded=True, http_response=response)

    async def _call(self, fn: FunctionSpec, kwargs: dict[str, Any]) -> Any:
        if fn.is_async:
            running: Awaitable[Any] = fn.user_function(**kwargs)
        else:
            call = functools.partial(self._in_thread, fn, kwargs)
            running = asyncio.get_running_loop().run_in_executor(self._executor, call)
        deadline = asyncio.timeout(self._timeout)
        try:
            async with deadline:
                return await running
        except TimeoutError as exc:
            if not deadline.expired():
                raise  # the function's own TimeoutError
            # Like the host we stop waiting; a synchronous function's thread runs on regardless.
            raise FunctionTimeoutError(
                f"Timeout value of {format_timespan(timedelta(seconds=self._timeout or 0))} "
                f"exceeded by function 'Functions.{fn.name}'"
            ) from exc

    def _in_thread(self, fn: FunctionSpec, kwargs: dict[str, Any]) -> Any:
        name = threading.current_thread().name
        self._threads[name] = fn.name
        try:
            return fn.user_function(**kwargs)
        finally:
            del self._threads[name]


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
