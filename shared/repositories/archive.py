"""The compliance archive: every event as an entity in Azure Table storage.

The entities themselves (keys, references, sizes, transaction groups) are
``shared.repositories.archive_entities``, whose docstring gives the layout
(docs/archive.md has the reasoning); this is the client that writes, reads,
erases and drops them: one table per month of event time, a user's entities
one RowKey range of one of a few partitions, so export and erasure are range
queries and never scan a table.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.models.events import ActivityEvent
from shared.repositories.archive_entities import (
    ACTOR_ROLE,
    REF_SUFFIX,
    archived_id,
    check_key,
    chunk_entities,
    entity_record,
    event_entities,
    partition_key,
    ref_key,
    table_name,
    user_range,
)
from shared.repositories.storage import Connection, table_service_client
from shared.repositories.table_rest import TransactionSender
from shared.settings import StorageConnection, get_settings

# RowKeys named in one query for existing entities: the service allows 15
# comparisons in a filter, and the PartitionKey takes one.
_KEYS_PER_QUERY = 14


# Table names: 3-63 alphanumerics starting with a letter; the prefix leaves room
# for the six month digits. Lowercase, so the name-range filter that lists our
# tables matches the one spelling we create (names compare case-insensitively).
_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{0,56}")
# Upserts replace the whole entity: a redelivery leaves exactly what one write leaves.
_OPTIONS: dict[str, dict[str, Any]] = {
    "create": {},
    "upsert": {"mode": UpdateMode.REPLACE},
    "delete": {},
}
ALREADY_THERE = "EntityAlreadyExists"
# How often a group is written again after finding some of its entities there
# already (another instance racing with the same events); each round takes
# what is still missing, so a fourth failure means something else is wrong.
_CREATE_ROUNDS = 4


@dataclass(frozen=True)
class Conflict:
    """A second version of an event met by the archive (the first is kept)."""

    event_id: str
    first_digest: str
    other_digest: str


class ArchiveRepository:
    """Reads and writes the monthly archive tables of one storage account."""

    def __init__(
        self,
        connection: Connection,
        table_prefix: str,
        *,
        max_workers: int = 8,
        **client_options: Any,
    ) -> None:
        """``connection``: a StorageConnection, or a connection string;
        ``client_options`` go to the SDK client (e.g. ``retry_total``)."""
        prefix = table_prefix.lower()
        if not _PREFIX_PATTERN.fullmatch(prefix):
            raise ValueError(
                f"archive table prefix {table_prefix!r} must be 1-57 letters and digits, "
                "starting with a letter"
            )
        self.table_prefix = prefix
        self._service = table_service_client(connection, **client_options)
        # The hot path (insert transactions) skips the SDK's multipart machinery.
        self._transactions = TransactionSender(self._service, connect_timeout=5, read_timeout=30)
        self._clients: dict[str, TableClient] = {}
        self._created: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="archive")

    def close(self) -> None:
        """Stop the writer threads and close the HTTP connections."""
        self._pool.shutdown(wait=True)
        self._transactions.close()
        self._service.close()

    # --- writes ----------------------------------------------------------

    def archive_events(
        self, events: Sequence[ActivityEvent], received_at: datetime
    ) -> tuple[int, list[Conflict]]:
        """Archive the events (and their subject references), keeping what is there.

        Returns how many events, and the second versions met: an event whose
        entity is there already with other content keeps that first version
        (SPEC 13). An entity there with the same content is a redelivery, left
        as it is. Raises on any other failure so the queue message is retried.
        """
        if received_at.tzinfo is None:
            raise ValueError("received_at must carry a time zone")
        own: dict[tuple[str, str], list[dict[str, Any]]] = {}
        references: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        seen: set[uuid.UUID] = set()
        for event in events:
            event_id = archived_id(event)
            # A transaction must not touch one RowKey twice; the first copy
            # wins, as with ON CONFLICT DO NOTHING in PostgreSQL.
            if event_id in seen:
                continue
            seen.add(event_id)
            table = table_name(self.table_prefix, event.occurred_at)
            entity, *refs = event_entities(event, received_at)
            own.setdefault((table, entity["PartitionKey"]), []).append(entity)
            references.setdefault(str(event_id), []).extend((table, ref) for ref in refs)
        for table in {table for table, _ in own}:
            self._ensure_table(table)
        conflicts = self._create(own)
        # A kept-out version's references would point the wrong people at the first.
        kept_out = {conflict.event_id for conflict in conflicts}
        pointers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for key, pairs in references.items():
            if key not in kept_out:
                for table, ref in pairs:
                    pointers.setdefault((table, ref["PartitionKey"]), []).append(ref)
        if pointers:
            self._create(pointers)
        return len(seen), conflicts

    def _create(self, groups: dict[tuple[str, str], list[dict[str, Any]]]) -> list[Conflict]:
        chunks = [
            (table, chunk) for (table, _), entities in groups.items()
            for chunk in chunk_entities(entities)
        ]  # fmt: skip
        if len(chunks) == 1:
            return self._create_chunk(*chunks[0])
        futures = [self._pool.submit(self._create_chunk, table, chunk) for table, chunk in chunks]
        wait(futures)
        return [conflict for future in futures for conflict in future.result()]

    def _create_chunk(self, table: str, entities: list[dict[str, Any]]) -> list[Conflict]:
        """Create a group of one partition; what is there already is compared, not replaced."""
        conflicts: list[Conflict] = []
        for attempt in range(_CREATE_ROUNDS):
            try:
                self._submit(table, "create", entities)
                return conflicts
            except HttpResponseError as exc:
                # One entity: ResourceExistsError; a transaction: its error code
                # and the index of the operation that met an existing entity.
                exists = isinstance(exc, ResourceExistsError)
                if not exists and getattr(exc, "error_code", None) != ALREADY_THERE:
                    raise
                index = 0 if exists else getattr(exc, "operation_index", None)
            # The first time, only the entity the service named is known to be
            # there (a re-sent event among new ones): one point read. Again, or
            # unnamed: most are likely there (a redelivered message): one query.
            if attempt == 0 and index is not None and 0 <= index < len(entities):
                there = self._digest(table, entities[index])
            else:
                there = self._digests(table, entities)
            missing = []
            for entity in entities:
                if entity["RowKey"] not in there:
                    missing.append(entity)
                    continue
                first = there[entity["RowKey"]]
                # Entities archived before digests were kept cannot be told apart.
                if first is not None and first != entity["content_digest"]:
                    conflicts.append(Conflict(entity["event_id"], first, entity["content_digest"]))
            if not missing:
                return conflicts
            entities = missing
        raise RuntimeError(f"archive entities in {table} kept colliding; retrying the message")

    def _digest(self, table: str, entity: dict[str, Any]) -> dict[str, str | None]:
        """The content digest of the entity, if it exists (a point read)."""
        try:
            found = self._client(table).get_entity(
                entity["PartitionKey"], entity["RowKey"], select=["RowKey", "content_digest"]
            )
        except ResourceNotFoundError:
            return {}
        return {entity["RowKey"]: found.get("content_digest")}

    def _digests(self, table: str, entities: list[dict[str, Any]]) -> dict[str, str | None]:
        """The content digests of those of the entities that exist: queries naming
        their RowKeys (``_KEYS_PER_QUERY`` each, within the service's 15
        comparisons per filter), never a range over other users' entities."""
        keys = sorted(entity["RowKey"] for entity in entities)
        client = self._client(table)
        digests: dict[str, str | None] = {}
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            names = keys[start : start + _KEYS_PER_QUERY]
            rows = " or ".join(f"RowKey eq @k{n}" for n in range(len(names)))
            parameters = {f"k{n}": key for n, key in enumerate(names)}
            found = client.query_entities(
                f"PartitionKey eq @pk and ( {rows} )",
                parameters={"pk": entities[0]["PartitionKey"], **parameters},
                select=["RowKey", "content_digest"],
            )
            digests.update({e["RowKey"]: e.get("content_digest") for e in found})
        return digests

    def delete_user(self, user_id: uuid.UUID | str) -> int:
        """Erase every entity naming the user; return how many entities were deleted.

        Range queries and point deletes only: the user's own range (their events
        and their references), the events they are a subject of, and the
        references their own events left in other users' ranges.
        """
        deleted = 0
        for table in self.list_archive_tables():
            client = self._client(table)
            own = list(self._partition(table, user_id))
            elsewhere: set[tuple[str, str]] = set()
            for entity in own:
                if entity["RowKey"].endswith(REF_SUFFIX):
                    elsewhere.add((entity["ref_partition"], entity["ref_row"]))
                else:
                    for subject in entity["user_ids"].split(",")[1:]:
                        ref = ref_key(subject, entity["RowKey"])
                        elsewhere.add((partition_key(subject), ref))
            keys = ({"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]} for e in own)
            self._run([(table, "delete", chunk) for chunk in chunk_entities(keys)])
            # delete_entity ignores entities already gone, so a repeat is harmless.
            for partition, row in sorted(elsewhere):
                client.delete_entity(partition, row)
            deleted += len(own) + len(elsewhere)
        return deleted

    # --- reads -----------------------------------------------------------

    def read_user(self, user_id: uuid.UUID | str) -> Iterator[dict[str, Any]]:
        """Every archived event naming the user, month by month in event-time order.

        Each record: ``table``, ``event_id``, ``type``, ``role`` (``actor`` or the
        field naming the user, e.g. ``student_id``), ``actor_id``, ``occurred_at``
        and ``event`` (the full event, or None when a reference outlived its event).
        """
        for table in self.list_archive_tables():
            client = self._client(table)
            for entity in self._partition(table, user_id):
                yield self._resolve(client, table, entity)

    def read_user_page(
        self, user_id: uuid.UUID | str, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """Up to ``limit`` records of ``read_user``, resuming after (table, RowKey).

        Returns the records and the position to resume from (None at the end):
        keyset paging on the user's RowKeys, so a page costs the same wherever it
        starts.
        """
        records: list[dict[str, Any]] = []
        low, high = user_range(user_id)
        for table in self.list_archive_tables():
            if after is not None and table < after[0]:
                continue
            query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
            parameters = {"pk": partition_key(user_id), "low": low, "high": high}
            if after is not None and table == after[0]:
                query += " and RowKey gt @rk"
                parameters["rk"] = check_key(after[1])
            client = self._client(table)
            for entity in client.query_entities(
                query, parameters=parameters, results_per_page=limit
            ):
                if len(records) == limit:
                    return records, after
                records.append(self._resolve(client, table, entity))
                after = (table, entity["RowKey"])
        return records, None

    def drop_tables_before(self, before: datetime) -> list[str]:
        """Retention: delete the monthly tables of months entirely before ``before``'s month."""
        cutoff = table_name(self.table_prefix, before)
        dropped = [table for table in self.list_archive_tables() if table < cutoff]
        for table in dropped:
            self._service.delete_table(table)  # one call per month, no entity transactions
            with self._lock:
                self._created.discard(table)
        return dropped

    def _resolve(self, client: TableClient, table: str, entity: dict[str, Any]) -> dict[str, Any]:
        """A partition entity as a record: the event itself, or the event a reference names."""
        if not entity["RowKey"].endswith(REF_SUFFIX):
            return entity_record(table, ACTOR_ROLE, entity["user_id"], entity, entity)
        try:
            target = client.get_entity(entity["ref_partition"], entity["ref_row"])
        except ResourceNotFoundError:
            target = None
        return entity_record(table, entity["role"], entity["user_id"], entity, target)

    def list_archive_tables(self) -> list[str]:
        """The archive's monthly tables, oldest first."""
        # A range filter on the name is a listing, not a scan of entities.
        tables = self._service.query_tables(
            "TableName ge @low and TableName lt @high",
            parameters={"low": self.table_prefix, "high": self.table_prefix + "{"},
        )
        monthly = re.compile(re.escape(self.table_prefix) + r"\d{6}")
        return sorted(t.name for t in tables if monthly.fullmatch(t.name))

    def count_entities(self) -> int:
        """Entities across all archive tables (a full scan: for tests and benchmarks)."""
        return sum(
            1
            for table in self.list_archive_tables()
            for _ in self._client(table).list_entities(select=["RowKey"])
        )

    def ping(self) -> None:
        """Raise if the storage account cannot be reached."""
        next(iter(self._service.list_tables(results_per_page=1)), None)

    # --- internals -------------------------------------------------------

    def _client(self, table: str) -> TableClient:
        client = self._clients.get(table)
        if client is None:
            client = self._clients.setdefault(table, self._service.get_table_client(table))
        return client

    def _partition(self, table: str, user_id: uuid.UUID | str) -> Iterator[dict[str, Any]]:
        """The user's entities in one table: their RowKey range in their partition."""
        low, high = user_range(user_id)
        entities: Iterator[dict[str, Any]] = self._client(table).query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": partition_key(user_id), "low": low, "high": high},
        )
        return entities

    def _ensure_table(self, table: str) -> None:
        """Create the table on first use in this process (races are harmless)."""
        if table in self._created:
            return
        with self._lock:
            if table not in self._created:
                # Succeeds quietly when another instance created it first.
                self._service.create_table_if_not_exists(table)
                self._created.add(table)

    def _submit(self, table: str, action: str, entities: list[dict[str, Any]]) -> None:
        try:
            self._send(table, action, entities)
        except HttpResponseError as exc:
            # error_code is set by the SDK's error decoding, not declared; a write
            # answered 404 can only have missed its table (create_entity's 404
            # carries no code).
            missing = getattr(exc, "error_code", None) == "TableNotFound" or (
                action != "delete" and isinstance(exc, ResourceNotFoundError)
            )
            if not missing:
                raise
            # Deleted since we created it (retention, a test's cleanup): create
            # it again once; a second failure propagates.
            with self._lock:
                self._created.discard(table)
            self._ensure_table(table)
            self._send(table, action, entities)

    def _send(self, table: str, action: str, entities: list[dict[str, Any]]) -> None:
        client = self._client(table)
        if len(entities) > 1 and action == "create":
            self._transactions.insert(table, entities)
        elif len(entities) > 1:
            client.submit_transaction([(action, entity, _OPTIONS[action]) for entity in entities])
        elif action == "create":
            # One operation is atomic anyway, and a plain request costs a quarter
            # of a one-operation transaction (no multipart body to build and parse).
            client.create_entity(entities[0])
        elif action == "upsert":
            client.upsert_entity(entities[0], mode=UpdateMode.REPLACE)
        else:
            client.delete_entity(entities[0]["PartitionKey"], entities[0]["RowKey"])

    def _run(self, transactions: list[tuple[str, str, list[dict[str, Any]]]]) -> None:
        """Submit the transactions, concurrently when there are several."""
        if len(transactions) == 1:
            self._submit(*transactions[0])
            return
        futures = [self._pool.submit(self._submit, *t) for t in transactions]
        wait(futures)
        for future in futures:
            future.result()  # re-raises the first failure


@lru_cache(maxsize=8)
def _archive(connection: StorageConnection, table_prefix: str) -> ArchiveRepository:
    return ArchiveRepository(connection, table_prefix)


def get_archive() -> ArchiveRepository:
    """The process-wide archive for the configured account and table prefix."""
    settings = get_settings()
    return _archive(settings.archive_storage, settings.archive_table_prefix)
