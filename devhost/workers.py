"""Several worker processes, as `FUNCTIONS_WORKER_PROCESS_COUNT` asks of the real host.

On Azure one instance can run up to ten Python worker processes; the host spreads
HTTP requests and queue messages over them, each with its own thread pool and
connections, and runs each timer once per app (a singleton lock). Here, with a
count above 1, `python -m devhost` becomes a supervisor of that many copies of
itself:

- every worker is a whole local host on the same port (SO_REUSEPORT: the kernel
  spreads connections among them) with its own queue pollers competing for the
  same queues, as several instances do; at-least-once delivery is the contract
  either way;
- only worker 0 runs timers (the real host's singleton timers);
- the workers share one key for the local sign-in cookie, so a browser signed
  in on one is signed in on all;
- a worker that dies is started again, as the host restarts a worker process
  (at most RESTARTS_PER_MINUTE times a minute, then the supervisor gives up);
- SIGTERM or Ctrl+C reaches each worker once; each stops within its own grace
  period and the supervisor exits 0 only when every worker drained. A second
  signal is passed on, and the workers end at once.

Worker output is passed through with a `[worker N]` prefix; the functions are
listed once, by worker 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from devhost.easyauth import SESSION_SECRET_SETTING
from devhost.settings import ConfigError, local_value

log = logging.getLogger("devhost")

WORKERS_SETTING = "FUNCTIONS_WORKER_PROCESS_COUNT"
MAX_WORKERS = 10  # the real host's limit
STARTED_LINE = "Host started"
RESTARTS_PER_MINUTE = 5
# How long a worker may take to start (it imports the app and creates its queues).
START_TIMEOUT = 120.0


def worker_count(app_dir: Path, environ: Mapping[str, str]) -> int:
    """FUNCTIONS_WORKER_PROCESS_COUNT from the environment, else local.settings.json; 1 to 10."""
    text = environ.get(WORKERS_SETTING) or local_value(app_dir, WORKERS_SETTING) or "1"
    try:
        count = int(text)
    except ValueError:
        raise ConfigError(f"{WORKERS_SETTING} must be a whole number, not {text!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError(f"{WORKERS_SETTING} must be between 1 and {MAX_WORKERS}, not {count}")
    return count


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the kernel sends the worker SIGTERM should the supervisor itself die."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class _Worker:
    def __init__(self, index: int, command: list[str], environ: dict[str, str]) -> None:
        self.index = index
        self._command = command
        self._environ = environ
        self.started = threading.Event()
        self.process: subprocess.Popen[str] | None = None
        self.spawned = 0

    def spawn(self) -> None:
        self.started.clear()
        self.spawned += 1
        self.process = subprocess.Popen(
            self._command,
            env=self._environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Its own session: Ctrl+C in a terminal reaches the supervisor only, which
            # passes it on once (a second one would end the worker at once).
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        threading.Thread(
            target=self._relay, args=(self.process,), name=f"worker-{self.index}", daemon=True
        ).start()

    def _relay(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(STARTED_LINE):
                self.started.set()
                if self.spawned > 1:
                    print(f"devhost: worker {self.index} started again", flush=True)
                continue  # the supervisor says it once, for all
            sys.stdout.write(f"[worker {self.index}] {line}")
            sys.stdout.flush()

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()


class Supervisor:
    """Runs `count` copies of `python -m devhost <argv>` on one port until told to stop."""

    def __init__(self, argv: Sequence[str], count: int, host: str, port: int, grace: float) -> None:
        self.count = count
        self.port = port or free_port(host)
        self._grace = grace
        self._stop = threading.Event()
        self._signals = 0
        environ = dict(os.environ)
        environ[SESSION_SECRET_SETTING] = secrets.token_hex(32)
        environ[WORKERS_SETTING] = "1"  # a worker is one process
        # `-m devhost` must resolve from any working directory, as it did for the supervisor.
        package_root = str(Path(__file__).resolve().parent.parent)
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_root, environ.get("PYTHONPATH")])
        )
        base = [sys.executable, "-m", "devhost", *argv, "--port", str(self.port)]
        self.workers = [
            _Worker(
                index,
                [*base, "--worker", str(index)] + ([] if index == 0 else ["--no-timers"]),
                environ,
            )
            for index in range(count)
        ]
        self._restarts: deque[float] = deque()

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for worker in self.workers:
            worker.spawn()
        if not self._wait_started():
            self._stop_all(signal.SIGKILL)
            return 1
        print(
            f"{STARTED_LINE} ({self.count} worker processes on port {self.port}). "
            "Press Ctrl+C to shut down.",
            flush=True,
        )
        while not self._stop.wait(0.5):
            if not self._keep_alive():
                self._stop_all(signal.SIGTERM)
                self._wait_exit()
                return 1
        return self._wait_exit()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            print(
                f"Shutting down {self.count} workers: work in flight gets {self._grace:g}s "
                "(Ctrl+C or SIGTERM again to quit at once)...",
                flush=True,
            )
        for worker in self.workers:
            worker.signal(signal.SIGTERM)
        self._stop.set()

    def _wait_started(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        for worker in self.workers:
            while not worker.started.wait(0.2):
                if worker.poll() is not None:
                    print(f"devhost: worker {worker.index} exited during start-up", flush=True)
                    return False
                if self._stop.is_set() or time.monotonic() > deadline:
                    return False
        return True

    def _keep_alive(self) -> bool:
        """Start again a worker that died; False once they die too often."""
        for worker in self.workers:
            code = worker.poll()
            if code is None or self._stop.is_set():
                continue
            now = time.monotonic()
            self._restarts.append(now)
            while self._restarts and now - self._restarts[0] > 60:
                self._restarts.popleft()
            if len(self._restarts) > RESTARTS_PER_MINUTE:
                print(f"devhost: workers died {len(self._restarts)} times in a minute; stopping")
                return False
            print(f"devhost: worker {worker.index} exited (code {code}); starting it again")
            worker.spawn()
        return True

    def _stop_all(self, signum: int) -> None:
        for worker in self.workers:
            worker.signal(signum)

    def _wait_exit(self) -> int:
        """Each worker bounds its own stop; past that (and a margin) it is killed."""
        deadline = time.monotonic() + self._grace + 10
        codes = []
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                codes.append(worker.process.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                worker.signal(signal.SIGKILL)
                codes.append(worker.process.wait())
        return 0 if all(code == 0 for code in codes) else 1
