"""``DevhostProcess``: the local Functions host in a subprocess, on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from scripts.benchlib.report import log
from scripts.benchlib.resources import BenchResources
from shared.settings import DEV_STORAGE

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DevhostProcess:
    """``python -m devhost`` in a subprocess, on a free loopback port."""

    def __init__(
        self,
        resources: BenchResources,
        *,
        queues: bool,
        timers: bool = False,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._resources = resources
        self._queues = queues
        self._timers = timers
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = (
            Path(tempfile.gettempdir()) / f"bench-devhost-{resources.label}-{resources.token}.log"
        )

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def log_path(self) -> Path:
        """Where the host's output goes (removed when it stops)."""
        return self._log_path

    def start(self) -> DevhostProcess:
        args = [sys.executable, "-m", "devhost", "--port", str(self.port), "--host", "127.0.0.1"]
        if not self._queues:
            args.append("--no-queues")
        if not self._timers:
            args.append("--no-timers")
        env = os.environ | self._resources.environ()
        if env.get("AzureWebJobsStorage") == "":
            env["AzureWebJobsStorage"] = DEV_STORAGE
        with open(self._log_path, "wb") as output:
            self._process = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"devhost exited at start:\n{self.log_tail()}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                log(f"devhost pid {self._process.pid} on {self.base_url} (log {self._log_path})")
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"devhost did not listen within {self._start_timeout:.0f} s")

    def log_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        with suppress(OSError):
            self._log_path.unlink()

    def __enter__(self) -> DevhostProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            tail = self.log_tail()
            if tail:
                log(f"devhost log tail:\n{tail}")
        self.stop()
