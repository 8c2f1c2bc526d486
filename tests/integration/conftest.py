"""The real function_app.py on the local host, against this session's stores."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from devhost import DevHost
from shared.repositories.archive import ArchiveRepository
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.settings import get_settings
from tests.conftest import TestRun

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"


def wait_until_stored(test_run: TestRun, event_id: str, timeout: float = 30) -> None:
    """Poll PostgreSQL until the event is in the ledger (persisted), or fail."""
    deadline = time.monotonic() + timeout
    query = "SELECT 1 FROM event_ledger WHERE event_id = %s"
    while not rows(test_run.postgres_dsn, query, event_id):
        assert time.monotonic() < deadline, f"event {event_id} not stored in {timeout} s"
        time.sleep(0.1)


def poisoned(connection: str, queue: str) -> int:
    """Messages in ``<queue>-poison`` (0 when it was never created)."""
    client = QueueClient.from_connection_string(connection, f"{queue}-poison")
    try:
        return len(client.peek_messages(max_messages=32))
    except ResourceNotFoundError:
        return 0
    finally:
        client.close()


def rows(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one query on the session's database (assertions read the tables directly)."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


@contextmanager
def app_environment(values: dict[str, str]) -> Iterator[None]:
    """Set app settings in os.environ (what the app reads) and restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def host_environ(test_run: TestRun, **extra: str) -> dict[str, str]:
    return (
        test_run.environ()
        | {
            "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
            "LOCAL_MASTER_KEY": MASTER_KEY,
            "POSTGRES_TIMEOUT_SECONDS": "2",
            # Tests send principals as App Service Authentication would set them.
            "LOCAL_TRUST_CLIENT_PRINCIPAL": "1",
        }
        | extra
    )


@contextmanager
def running_host(app_dir: Path, environ: dict[str, str], **options: Any) -> Iterator[DevHost]:
    with app_environment(environ), DevHost(app_dir, port=0, environ=environ, **options) as host:
        yield host


def fast_app_dir(tmp: Path, **queue_settings: Any) -> Path:
    """A copy of the app whose host.json retries failed messages at once."""
    for name in ("function_app.py", "functions", "shared"):
        (tmp / name).symlink_to(ROOT / name)
    host_json = json.loads((ROOT / "host.json").read_text())
    host_json["extensions"]["queues"].update(
        {"visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:00.200"} | queue_settings
    )
    (tmp / "host.json").write_text(json.dumps(host_json))
    return tmp


@pytest.fixture(scope="session")
def host(test_run: TestRun) -> Iterator[DevHost]:
    """The app as `func start` would run it, started once for the session."""
    with running_host(ROOT, host_environ(test_run)) as running:
        yield running


@pytest.fixture(scope="session")
def client(host: DevHost) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=host.url(""), headers={"x-functions-key": FUNCTION_KEY}, timeout=30
    ) as http:
        yield http


@pytest.fixture(scope="session")
def postgres(test_run: TestRun) -> Iterator[PostgresRepository]:
    with PostgresRepository(test_run.postgres_dsn) as repository:
        yield repository


@pytest.fixture(scope="session")
def archive(test_run: TestRun) -> Iterator[ArchiveRepository]:
    repository = ArchiveRepository(test_run.storage_connection, test_run.archive_table_prefix)
    yield repository
    repository.close()


@pytest.fixture(scope="session")
def redis_views(test_run: TestRun) -> Iterator[RealtimeRepository]:
    repository = RealtimeRepository(test_run.redis_url, test_run.redis_prefix)
    yield repository
    repository.close()


@pytest.fixture
def scratch_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
