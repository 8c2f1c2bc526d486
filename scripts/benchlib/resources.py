"""``BenchResources``: everything a run creates, under names of its own, and its removal."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType

import psycopg
import redis
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from scripts.benchlib.report import log
from shared.migrate import migrate
from shared.repositories.archive import ArchiveRepository
from shared.repositories.archive_entities import REF_SUFFIX
from shared.settings import get_settings

STORES = frozenset({"database", "redis", "storage"})


@dataclass
class BenchResources:
    """Everything one benchmark run creates, under names of its own."""

    label: str
    server_dsn: str = field(default_factory=lambda: get_settings().postgres_dsn)
    storage: str = field(default_factory=lambda: get_settings().storage_connection)
    redis_url: str = field(default_factory=lambda: get_settings().redis_url)
    bucket_seconds: int = 60
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    # The stores the run touches (and so creates and cleans up): a subset of STORES.
    uses: frozenset[str] = STORES

    @property
    def database(self) -> str:
        return f"bench_{self.label}_{self.token}"

    @property
    def dsn(self) -> str:
        return make_conninfo(self.server_dsn, dbname=self.database)

    @property
    def admin_dsn(self) -> str:
        return make_conninfo(self.server_dsn, dbname="postgres")

    @property
    def redis_prefix(self) -> str:
        return f"bench:{self.label}:{self.token}:"

    def queue(self, sink: str) -> str:
        return f"bench-{self.label}-{self.token}-{sink}"

    @property
    def queues(self) -> list[str]:
        """Every queue of the run (all are deleted at the end)."""
        return [self.queue(sink) for sink in ("persist", "archive", "realtime")]

    @property
    def ingest_queues(self) -> list[str]:
        """The queues ingest writes on every request (realtime only as catch-up)."""
        return [self.queue(sink) for sink in ("persist", "archive")]

    @property
    def container(self) -> str:
        return self.queue("payloads")

    @property
    def table_prefix(self) -> str:
        return f"bench{self.label}{self.token}"

    @property
    def storage_names(self) -> str:
        return f"queues/container bench-{self.label}-{self.token}-*, tables {self.table_prefix}*"

    def environ(self) -> dict[str, str]:
        """The app's settings for this run (function keys off: no auth on loopback)."""
        return {
            "AzureWebJobsStorage": self.storage,
            "ARCHIVE_STORAGE_CONNECTION": self.storage,
            "POSTGRES_DSN": self.dsn,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.redis_prefix,
            "PERSIST_QUEUE": self.queue("persist"),
            "ARCHIVE_QUEUE": self.queue("archive"),
            "REALTIME_QUEUE": self.queue("realtime"),
            "PAYLOAD_CONTAINER": self.container,
            "ARCHIVE_TABLE_PREFIX": self.table_prefix,
            "ROLLUP_BUCKET_SECONDS": str(self.bucket_seconds),
            "LOCAL_FUNCTION_KEY": "",
            "LOCAL_MASTER_KEY": "",
        }

    def setup(self) -> BenchResources:
        if "database" in self.uses:
            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
            log(f"created database {self.database}")
            migrate(self.dsn)
        if "redis" in self.uses:
            log(f"Redis prefix {self.redis_prefix!r}")
        if "storage" in self.uses:
            log(f"storage: {self.storage_names}")
        return self

    def delete_tables(self) -> None:
        """Every archive table of the run (they all start with ``table_prefix``)."""
        service = TableServiceClient.from_connection_string(self.storage)
        try:
            for table in list(service.list_tables()):
                if table.name.startswith(self.table_prefix):
                    service.delete_table(table.name)
        finally:
            service.close()

    def redis_keys(self) -> int:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return sum(1 for _ in client.scan_iter(match=self.redis_prefix + "*", count=10_000))
        finally:
            client.close()

    def archive(self) -> ArchiveRepository:
        return ArchiveRepository(self.storage, self.table_prefix)

    def count_archived_events(self, archive: ArchiveRepository) -> int:
        """Actor entities (one per event) in this run's archive tables; references left out."""
        service = TableServiceClient.from_connection_string(self.storage)
        try:
            return sum(
                1
                for table in archive.list_archive_tables()
                for entity in service.get_table_client(table).list_entities(select=["RowKey"])
                if not str(entity["RowKey"]).endswith(REF_SUFFIX)
            )
        finally:
            service.close()

    def teardown(self) -> None:
        """Remove the database, Redis keys, queues (and poison queues), container, tables."""
        problems: list[str] = []

        def attempt(what: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as exc:  # keep removing the rest, report at the end
                problems.append(f"{what}: {exc}")

        def drop_database() -> None:
            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)
                    )
                )

        def delete_redis_keys() -> None:
            client = redis.Redis.from_url(self.redis_url)
            try:
                batch: list[bytes] = []
                for key in client.scan_iter(match=self.redis_prefix + "*", count=10_000):
                    batch.append(key)
                    if len(batch) >= 10_000:
                        client.unlink(*batch)
                        batch = []
                if batch:
                    client.unlink(*batch)
            finally:
                client.close()

        def delete_queues() -> None:
            service = QueueServiceClient.from_connection_string(self.storage)
            try:
                for name in self.queues:
                    for queue in (name, f"{name}-poison"):
                        with suppress(ResourceNotFoundError):
                            service.delete_queue(queue)
            finally:
                service.close()

        def delete_container() -> None:
            service = BlobServiceClient.from_connection_string(self.storage)
            try:
                with suppress(ResourceNotFoundError):
                    service.delete_container(self.container)
            finally:
                service.close()

        removed = []
        if "database" in self.uses:
            attempt("database", drop_database)
            removed.append(f"database {self.database}")
        if "redis" in self.uses:
            attempt("redis keys", delete_redis_keys)
            removed.append(f"Redis keys {self.redis_prefix}*")
        if "storage" in self.uses:
            attempt("queues", delete_queues)
            attempt("container", delete_container)
            attempt("tables", self.delete_tables)
            removed.append(self.storage_names)
        if problems:
            log("cleanup problems: " + "; ".join(problems))
        else:
            log("removed " + ", ".join(removed))

    def __enter__(self) -> BenchResources:
        try:
            return self.setup()
        except BaseException:
            self.teardown()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()
