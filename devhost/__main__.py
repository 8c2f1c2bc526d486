"""`python -m devhost`: serve function_app.py locally, as `func start` would.

On SIGTERM or SIGINT (Ctrl+C) the host stops within a bounded time, whatever the
functions and their storage are doing:
  - at once it accepts no connection or request and polls no queue or timer;
  - the work in flight gets --shutdown-grace seconds (DEVHOST_SHUTDOWN_GRACE, default
    10) to finish; what is still running then is abandoned and logged (a queue message
    is not deleted, so the queue delivers it again once its lease ends);
  - exit code 0 when everything finished, 1 when something was abandoned. A thread still
    running function code cannot be stopped: the process exits without it (os._exit,
    after the logs are flushed);
  - a second SIGTERM/SIGINT ends the process at once (it dies of that signal);
  - should anything else hold the exit up (an app's own threads, atexit handlers), a
    watchdog exits (code 1) grace + 3.5 s after the signal, and failing that the kernel
    ends the process with SIGALRM 2 s later.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import NoReturn

from devhost.easyauth import LOGIN_PATH
from devhost.host import DevHost, HostStartError
from devhost.loader import LoadError
from devhost.settings import ConfigError, local_http_port
from devhost.shutdown import (
    CLOSE_MARGIN,
    DEFAULT_GRACE,
    GRACE_SETTING,
    grace_from_environ,
    parse_grace,
)
from devhost.workers import Supervisor, worker_count

DEFAULT_PORT = 7071
# Beyond grace + CLOSE_MARGIN (the host's own stop): what exiting may take before the watchdog
# ends the process, and then how long the kernel's SIGALRM backstop waits for the watchdog.
EXIT_MARGIN = 1.0
ALARM_MARGIN = 2

log = logging.getLogger("devhost")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Run the Azure Functions app in --app-dir without Core Tools.",
    )
    parser.add_argument("--app-dir", type=Path, default=Path("."), help="default: .")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"default: local.settings.json Host.LocalHttpPort, else {DEFAULT_PORT}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--no-queues", action="store_true", help="do not poll queue triggers")
    parser.add_argument("--no-timers", action="store_true", help="do not run timer triggers")
    parser.add_argument(
        "--shutdown-grace",
        type=_grace,
        default=None,
        metavar="SECONDS",
        help="on SIGTERM/Ctrl+C, how long work in flight may take to finish "
        f"(default: ${GRACE_SETTING}, else {DEFAULT_GRACE:g})",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    # Set by the supervisor of several worker processes (devhost/workers.py), not by people.
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.shutdown_grace is None:
        try:
            args.shutdown_grace = grace_from_environ(os.environ)
        except ValueError as exc:
            parser.error(f"{GRACE_SETTING}: {exc}")
    return args


def _grace(text: str) -> float:
    try:
        return parse_grace(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(asctime)s] %(message)s",
        stream=sys.stdout,
    )
    # The storage SDK logs every HTTP request at INFO; the pollers would flood the console.
    logging.getLogger("azure").setLevel(logging.WARNING)
    grace: float = args.shutdown_grace
    if args.worker is None:
        try:
            count = worker_count(args.app_dir, os.environ)
        except ConfigError as exc:
            print(f"devhost: {exc}", file=sys.stderr)
            return 1
        if count > 1:
            port = args.port if args.port is not None else local_http_port(args.app_dir)
            given = list(sys.argv[1:] if argv is None else argv)
            return Supervisor(
                given, count, args.host, DEFAULT_PORT if port is None else port, grace
            ).run()
    stop = threading.Event()
    started = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # The next SIGTERM/SIGINT ends the process at once, by the kernel's default action:
        # that works even when no Python code can run any more.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if not started.is_set():
            # Nothing is served yet, and start-up may be waiting on unreachable storage.
            _exit_now(1, f"devhost: {signal.Signals(signum).name} during start-up; exiting")
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        port = args.port if args.port is not None else local_http_port(args.app_dir)
        host = DevHost(
            args.app_dir,
            host=args.host,
            port=DEFAULT_PORT if port is None else port,
            queues=not args.no_queues,
            timers=not args.no_timers,
            reuse_port=args.worker is not None,
        ).start()
    except (HostStartError, LoadError, ConfigError, OSError) as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the app itself failed to import: show where, as func start does
        traceback.print_exc()
        return 1
    started.set()
    # Again: the app may have set handlers of its own on import, and ours decide how we stop.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if not args.worker:  # one list, not one per worker process
        print("\nFunctions:\n")
        for line in host.describe():
            print(f"\t{line}\n")
        print(f"Sign in (local Easy Auth): http://localhost:{host.port}{LOGIN_PATH}\n")
    print("Host started. Press Ctrl+C to shut down.", flush=True)
    stop.wait()
    print(
        f"Shutting down: work in flight gets {grace:g}s "
        "(Ctrl+C or SIGTERM again to quit at once)...",
        flush=True,
    )
    _arm_watchdog(grace + CLOSE_MARGIN + EXIT_MARGIN)
    report = host.stop(timeout=grace)  # logs what it abandoned
    if report.threads:
        # Those threads would hold the interpreter's exit until their function returns.
        _exit_now(1, f"devhost: exiting without {len(report.threads)} function thread(s)")
    return 0 if report.drained else 1


def _arm_watchdog(seconds: float) -> None:
    """End the process `seconds` from now, should exiting take that long."""

    def watch() -> None:
        time.sleep(seconds)
        holding = [t.name for t in threading.enumerate() if not t.daemon and t.is_alive()]
        _exit_now(1, f"devhost: not exited {seconds:g}s after the signal (threads: {holding})")

    # A daemon thread: it never holds up the exit itself.
    threading.Thread(target=watch, name="devhost-watchdog", daemon=True).start()
    # Should no Python code run any more (a C call holding the GIL), the kernel ends it.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(math.ceil(seconds) + ALARM_MARGIN)


def _exit_now(code: int, message: str) -> NoReturn:
    """Log, flush, and end the process without waiting for any thread or atexit handler."""
    with contextlib.suppress(Exception):
        log.warning("%s", message)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
