"""Fixtures for the devhost tests: sample apps, Azurite queues unique to the run."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient

from devhost import DevHost
from tests.integration.services import PrivateAzurite

HERE = Path(__file__).parent
REPO = HERE.parents[1]
BLOCKING_APP = HERE / "sample_app_blocking"
HTTP_APP = HERE / "sample_app_http"
NO_KEYS = {"LOCAL_FUNCTION_KEY": "", "LOCAL_MASTER_KEY": ""}
QUEUE_APP = HERE / "sample_app_queues"
STORAGE = "UseDevelopmentStorage=true"
# A schedule that never fires during a test run (midnight on 1 January).
NEVER = "0 0 0 1 1 *"


@pytest.fixture(scope="session")
def storage() -> str:
    """Azurite's connection string, after checking that its queue service answers."""
    try:
        socket.create_connection(("127.0.0.1", 10001), timeout=2).close()
    except OSError:
        pytest.fail("Azurite queue service is not reachable on 127.0.0.1:10001", pytrace=False)
    return STORAGE


@pytest.fixture(scope="session")
def queue_prefix(storage: str) -> Iterator[str]:
    """A queue-name prefix owned by this session; its queues are deleted at the end."""
    prefix = f"dh{secrets.token_hex(4)}"
    yield prefix
    service = QueueServiceClient.from_connection_string(storage)
    for queue in service.list_queues(name_starts_with=prefix):
        service.delete_queue(queue.name)


@pytest.fixture
def queue_names(queue_prefix: str) -> dict[str, str]:
    """Fresh queue names for one test (so no test sees another's leftovers)."""
    test_id = secrets.token_hex(3)
    roles = ("work", "slow", "forward", "sink")
    return {role: f"{queue_prefix}-{test_id}-{role}" for role in roles}


@pytest.fixture
def queue_app_environ(storage: str, queue_names: dict[str, str]) -> Callable[..., dict[str, str]]:
    """App settings for the queue sample app; keyword arguments override them."""

    def environ(**overrides: str) -> dict[str, str]:
        settings = {
            "AzureWebJobsStorage": storage,
            "DhStorage": storage,
            "DH_QUEUE_WORK": queue_names["work"],
            "DH_QUEUE_SLOW": queue_names["slow"],
            "DH_QUEUE_FORWARD": queue_names["forward"],
            "DH_QUEUE_SINK": queue_names["sink"],
            "DH_TICK_SCHEDULE": NEVER,
            "DH_FAILING_SCHEDULE": NEVER,
            "LOCAL_FUNCTION_KEY": "",
            "LOCAL_MASTER_KEY": "",
        }
        settings.update(overrides)
        return settings

    return environ


@pytest.fixture
def copy_app(tmp_path: Path) -> Callable[..., Path]:
    """Copy a sample app to a temporary directory, optionally changing its files."""

    def copy(source: Path, files: dict[str, Any] | None = None) -> Path:
        """`files` maps file names (host.json, local.settings.json) to JSON documents."""
        target = tmp_path / source.name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        for name, document in (files or {}).items():
            (target / name).write_text(json.dumps(document), encoding="utf-8")
        return target

    return copy


class Queues:
    """Test-side access to the run's queues."""

    def __init__(self, connection: str) -> None:
        self._connection = connection

    def client(self, name: str) -> QueueClient:
        return QueueClient.from_connection_string(self._connection, name)

    def send(self, name: str, text: str) -> None:
        """Put `text` on the queue exactly as given (encode it yourself for base64)."""
        self.client(name).send_message(text)

    def peek(self, name: str) -> list[Any]:
        """The stored texts of the (visible) messages, without taking them."""
        try:
            return [m.content for m in self.client(name).peek_messages(max_messages=32)]
        except ResourceNotFoundError:  # a queue that was never created holds nothing
            return []

    def count(self, name: str) -> int:
        return int(self.client(name).get_queue_properties().approximate_message_count)


@pytest.fixture(scope="session")
def queues(storage: str) -> Queues:
    return Queues(storage)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def b64(text: str | bytes) -> str:
    """How a base64-encoding producer stores a message body."""
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def keyless_http_host() -> Iterator[DevHost]:
    """The HTTP sample app, no keys enforced, no queues or timers: one per test module."""
    with DevHost(HTTP_APP, port=0, environ=NO_KEYS, queues=False, timers=False) as running:
        yield running


@pytest.fixture
def private_azurite() -> Iterator[PrivateAzurite]:
    """An Azurite of one test's own on spare ports, which the test may stop, kill or
    freeze (never the machine's shared one on 10000-10002)."""
    azurite = PrivateAzurite()
    azurite.start()
    try:
        yield azurite
    finally:
        azurite.destroy()


class CliHost:
    """`python -m devhost` in a subprocess, its output collected as it comes."""

    def __init__(self, app_dir: Path, *args: str, environ: dict[str, str] | None = None) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "devhost", "--app-dir", str(app_dir)]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), *args],
            cwd=REPO,
            env={**os.environ, **(environ or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}/api/{route}"

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        """Wait until `text` appears in the output (failing early if the process ends)."""

        def seen() -> bool:
            if text in self.output:
                return True
            if self.process.poll() is not None:
                self._reader.join(5)
                if text in self.output:
                    return True
                pytest.fail(f"devhost exited ({self.process.returncode}):\n{self.output}")
            return False

        wait_until(seen, timeout=timeout, what=f"{text!r} in the output:\n{self.output}")

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end; its exit code (or fail after `timeout` seconds)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"devhost still running after {timeout}s:\n{self.output}")
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)


@pytest.fixture
def cli_hosts() -> Iterator[list[CliHost]]:
    """Put the CliHosts a test starts here: they are killed if the test leaves them running."""
    started: list[CliHost] = []
    try:
        yield started
    finally:
        for host in started:
            host.close()
