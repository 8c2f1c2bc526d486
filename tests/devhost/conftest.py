"""Fixtures for the devhost tests: sample apps, Azurite queues unique to the run."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient

from devhost import DevHost

HERE = Path(__file__).parent
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


def b64(text: str | bytes) -> str:
    """How a base64-encoding producer stores a message body."""
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def keyless_http_host() -> Iterator[DevHost]:
    """The HTTP sample app, no keys enforced, no queues or timers: one per test module."""
    with DevHost(HTTP_APP, port=0, environ=NO_KEYS, queues=False, timers=False) as running:
        yield running
