"""Fixtures shared by every test.

Each test session gets its own PostgreSQL database, Redis key prefix and
queue/table/container names (derived from one random run id), and removes
them at the end. Integration tests fail loudly, never skip, when a service
is down: a green run must mean the real stores were exercised.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from shared.settings import get_settings

ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STORAGE = os.environ.get("TEST_STORAGE_CONNECTION", "UseDevelopmentStorage=true")


def _require_port(name: str, port: int, hint: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        pytest.fail(f"{name} is not reachable on 127.0.0.1:{port}. {hint}", pytrace=False)


@dataclass(frozen=True)
class TestRun:
    """Names that belong to this test session only."""

    __test__ = False  # a fixture value, not a test class

    run_id: str
    postgres_dsn: str
    redis_url: str
    redis_prefix: str
    storage_connection: str
    persist_queue: str
    archive_queue: str
    realtime_queue: str
    archive_table_prefix: str
    payload_container: str

    def environ(self) -> dict[str, str]:
        return {
            "AzureWebJobsStorage": self.storage_connection,
            "ARCHIVE_STORAGE_CONNECTION": self.storage_connection,
            "POSTGRES_DSN": self.postgres_dsn,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.redis_prefix,
            "PERSIST_QUEUE": self.persist_queue,
            "ARCHIVE_QUEUE": self.archive_queue,
            "REALTIME_QUEUE": self.realtime_queue,
            "ARCHIVE_TABLE_PREFIX": self.archive_table_prefix,
            "PAYLOAD_CONTAINER": self.payload_container,
        }


@pytest.fixture(scope="session")
def app_functions() -> list[Any]:
    """The app's registered functions, as the worker indexes them.

    ``FunctionApp.get_functions()`` may be called once per app object (a second
    call reports duplicate names), so the session asks once and shares the list.
    Imported in the default AUTH_MODE (keys), whatever host a test has running
    (a host applies its settings, AUTH_MODE=principal among them, to os.environ).
    """
    running_mode = os.environ.pop("AUTH_MODE", None)
    try:
        import function_app
    finally:
        if running_mode is not None:
            os.environ["AUTH_MODE"] = running_mode
    functions: list[Any] = function_app.app.get_functions()
    return functions


@pytest.fixture(scope="session")
def run_id() -> str:
    return secrets.token_hex(4)


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A new, empty database ``name``; its DSN; dropped afterwards, also on failure."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_dsn(run_id: str) -> Iterator[str]:
    """A fresh, migrated database for this session, dropped afterwards."""
    _require_port("PostgreSQL", 5432, "Start it: pg_ctlcluster <version> main start")
    from shared.migrate import migrate

    with scratch_database(f"test_activity_{run_id}") as dsn:
        migrate(dsn)
        yield dsn


@pytest.fixture(scope="session")
def redis_prefix(run_id: str) -> Iterator[str]:
    """A key prefix owned by this session; every key under it is deleted afterwards."""
    _require_port("Redis", 6379, "Start it: redis-server --daemonize yes --port 6379")
    import redis

    prefix = f"test:{run_id}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def storage_connection() -> str:
    for port, service in ((10000, "blob"), (10001, "queue"), (10002, "table")):
        _require_port(
            f"Azurite ({service})", port, "Start it: scripts/services.sh start (or make test)"
        )
    return STORAGE


@pytest.fixture(scope="session")
def test_run(
    run_id: str, postgres_dsn: str, redis_prefix: str, storage_connection: str
) -> Iterator[TestRun]:
    """Every service ready, with names unique to this session; storage cleaned up after."""
    run = TestRun(
        run_id=run_id,
        postgres_dsn=postgres_dsn,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        storage_connection=storage_connection,
        persist_queue=f"t{run_id}-persist",
        archive_queue=f"t{run_id}-archive",
        realtime_queue=f"t{run_id}-realtime",
        archive_table_prefix=f"t{run_id}archive",
        payload_container=f"t{run_id}-payloads",
    )
    yield run
    _delete_storage(run)


def _delete_storage(run: TestRun) -> None:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    queues = QueueServiceClient.from_connection_string(run.storage_connection)
    for queue in queues.list_queues(name_starts_with=f"t{run.run_id}"):
        queues.delete_queue(queue.name)
    tables = TableServiceClient.from_connection_string(run.storage_connection)
    for table in tables.list_tables():
        if table.name.startswith(run.archive_table_prefix):
            tables.delete_table(table.name)
    blobs = BlobServiceClient.from_connection_string(run.storage_connection)
    for container in blobs.list_containers(name_starts_with=f"t{run.run_id}"):
        blobs.delete_container(container.name)


@pytest.fixture
def app_env(test_run: TestRun, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestRun]:
    """The process environment pointed at this session's stores, as the app reads it."""
    for key, value in test_run.environ().items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield test_run
    get_settings.cache_clear()
