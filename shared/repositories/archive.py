"""The compliance archive: every event as an entity in Azure Table storage.

Layout (docs/archive.md has the reasoning):

- one table per month of event time, ``{prefix}{YYYYMM}``, so retention drops
  whole tables;
- PartitionKey = the acting user's id, so one user's events arriving together
  share entity-group transactions and one user's archive is a partition query;
- RowKey = ``{event time}_{event_id}``: deterministic, so a redelivered event
  is upserted over itself, and time-ordered within the partition;
- for every other user an event names (the student of a feedback), a small
  reference entity in that user's partition, RowKey ``{event time}_{event_id}_ref``,
  so export and erasure of any user never scan a table.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import limits
from shared.models.events import ActivityEvent
from shared.repositories.storage import Connection, table_service_client
from shared.settings import StorageConnection, get_settings

ROW_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
TABLE_MONTH_FORMAT = "%Y%m"
REF_SUFFIX = "_ref"
ACTOR_ROLE = "actor"
EVENT_JSON = "event_json"
EVENT_JSON_PARTS = "event_json_parts"

# Keys are built from UUIDs, digits, "T", "Z", "_" and "-" only; an allow-list is
# stricter than the service's deny-list (/ \ # ? and control characters).
_KEY_PATTERN = re.compile(r"[0-9A-Za-z_-]{1,1024}")
# Table names: 3-63 alphanumerics starting with a letter; the prefix leaves room
# for the six month digits. Lowercase, so the name-range filter that lists our
# tables matches the one spelling we create (names compare case-insensitively).
_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{0,56}")
# The multipart framing, URL and type annotations of one operation in a
# transaction body, on top of the entity's own JSON (measured: ~900 bytes
# for an event entity; TABLE_BATCH_MAX_BYTES keeps 1 MiB spare besides).
_OPERATION_OVERHEAD_BYTES = 1024
# Upserts replace the whole entity: a redelivery leaves exactly what one write leaves.
_OPTIONS: dict[str, dict[str, Any]] = {
    "create": {},
    "upsert": {"mode": UpdateMode.REPLACE},
    "delete": {},
}
ALREADY_THERE = "EntityAlreadyExists"
# How often a group is written again after finding some of its entities there
# already (another instance racing with the same events); each round takes
# what is still missing, so a third failure means something else is wrong.
_CREATE_ROUNDS = 3


@dataclass(frozen=True)
class Conflict:
    """A second version of an event met by the archive (the first is kept)."""

    event_id: str
    first_digest: str
    other_digest: str


class InvalidKeyError(ValueError):
    """A PartitionKey or RowKey that the Table service would reject or misroute."""


class ArchiveEntityTooLargeError(ValueError):
    """An event whose archive entity would exceed the service's entity size limit."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe PartitionKey/RowKey, else raise InvalidKeyError."""
    if not _KEY_PATTERN.fullmatch(key):
        raise InvalidKeyError(f"unsafe table key {key!r}: only [0-9A-Za-z_-] are allowed")
    return key


def table_name(prefix: str, occurred_at: datetime) -> str:
    """The monthly table holding events that happened at ``occurred_at``."""
    return f"{prefix}{occurred_at.astimezone(UTC).strftime(TABLE_MONTH_FORMAT)}"


def row_key(occurred_at: datetime, event_id: uuid.UUID) -> str:
    """The event's RowKey: sortable event time, then the id that makes it unique."""
    time = occurred_at.astimezone(UTC).strftime(ROW_TIME_FORMAT)
    return check_key(f"{time}_{event_id}")


def partition_key(user_id: uuid.UUID | str) -> str:
    """A user's PartitionKey: the canonical lowercase UUID (rejects anything else)."""
    return check_key(str(uuid.UUID(str(user_id))))


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, which is how the service measures strings."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_utf16(text: str, max_units: int = limits.TABLE_PROPERTY_MAX_CHARS) -> list[str]:
    """Split ``text`` into parts of at most ``max_units`` UTF-16 code units.

    Parts end on code point boundaries, so a surrogate pair is never cut.
    """
    if max_units < 2:
        raise ValueError("a part must hold at least 2 units (one non-BMP character)")
    parts: list[str] = []
    start = 0
    while start < len(text):
        size = max_units
        while True:
            part = text[start : start + size]
            excess = utf16_len(part) - max_units
            if excess <= 0:
                break
            # Each code point is one or two units: dropping ceil(excess / 2)
            # code points may not be enough, but never drops below a fit.
            size -= (excess + 1) // 2
        parts.append(part)
        start += len(part)
    return parts


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return 4 + 2 * utf16_len(value)
    if isinstance(value, bytes):
        return 4 + len(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, uuid.UUID):
        return 16
    if isinstance(value, (datetime, float)):
        return 8
    raise TypeError(f"no table type for {type(value).__name__}")


def entity_size(entity: Mapping[str, Any]) -> int:
    """Stored size in bytes, by the service's published formula.

    4 bytes + 2 per key character + for each property 8 bytes, 2 per name
    character and the value (strings 4 + 2 per UTF-16 unit, datetime 8, ...).
    """
    keys = entity["PartitionKey"] + entity["RowKey"]
    size = 4 + 2 * utf16_len(keys)
    for name, value in entity.items():
        if name not in ("PartitionKey", "RowKey"):
            size += 8 + 2 * len(name) + _value_size(value)
    return size


def payload_bytes(entity: Mapping[str, Any]) -> int:
    """Estimated bytes the entity adds to a transaction request body."""
    # The SDK sends ASCII-escaped JSON, so a CJK character costs 6 bytes and
    # an emoji 12; measuring the same encoding keeps the estimate honest.
    return len(json.dumps(entity, default=str)) + _OPERATION_OVERHEAD_BYTES


def _event_id(event: ActivityEvent) -> uuid.UUID:
    event_id = event.with_event_id().event_id
    assert event_id is not None  # with_event_id always sets it
    return event_id


def _roles(event: ActivityEvent) -> dict[uuid.UUID, str]:
    """Each user the event names after the actor, with the field naming them."""
    roles: dict[uuid.UUID, str] = {}
    for name in event.subject_fields:
        value = getattr(event, name)
        if value is not None and value != event.actor_id:
            roles.setdefault(value, name)
    return roles


def event_entities(event: ActivityEvent, received_at: datetime) -> list[dict[str, Any]]:
    """The event's entity (in the actor's partition), then one reference per subject."""
    event_id = _event_id(event)
    occurred_at = event.occurred_at.astimezone(UTC)
    document = event.model_dump(mode="json")
    document["event_id"] = str(event_id)
    event_json = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    key = row_key(occurred_at, event_id)
    entity: dict[str, Any] = {
        "PartitionKey": partition_key(event.actor_id),
        "RowKey": key,
        "event_id": str(event_id),
        "type": document["type"],
        "user_id": str(event.actor_id),
        "user_ids": ",".join(str(user_id) for user_id in event.user_ids),
        "occurred_at": occurred_at,
        "received_at": received_at.astimezone(UTC),
        "content_digest": event.content_digest,
    }
    parts = split_utf16(event_json)
    if len(parts) == 1:
        entity[EVENT_JSON] = event_json
    else:
        entity[EVENT_JSON_PARTS] = len(parts)
        entity.update({f"{EVENT_JSON}_{index:03d}": part for index, part in enumerate(parts)})
    size = entity_size(entity)
    if size > limits.TABLE_ENTITY_MAX_BYTES:
        raise ArchiveEntityTooLargeError(
            f"event {event_id} ({document['type']}) needs an archive entity of {size} bytes, "
            f"over the limit of {limits.TABLE_ENTITY_MAX_BYTES}"
        )
    entities = [entity]
    for subject, role in _roles(event).items():
        entities.append(
            {
                "PartitionKey": partition_key(subject),
                "RowKey": check_key(key + REF_SUFFIX),
                "ref_partition": entity["PartitionKey"],
                "ref_row": key,
                "event_id": str(event_id),
                "type": document["type"],
                "role": role,
                "occurred_at": occurred_at,
                "content_digest": event.content_digest,
            }
        )
    return entities


def event_json(entity: Mapping[str, Any]) -> str:
    """The full event JSON of an archive entity, reassembled from its parts."""
    if EVENT_JSON in entity:
        text: str = entity[EVENT_JSON]
        return text
    count = int(entity[EVENT_JSON_PARTS])
    return "".join(entity[f"{EVENT_JSON}_{index:03d}"] for index in range(count))


def chunk_entities(
    entities: Iterable[dict[str, Any]],
    max_entities: int = limits.TABLE_BATCH_MAX_ENTITIES,
    max_bytes: int = limits.TABLE_BATCH_MAX_BYTES,
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive groups that each fit in one entity-group transaction."""
    chunk: list[dict[str, Any]] = []
    chunk_bytes = 0
    for entity in entities:
        size = payload_bytes(entity)
        if chunk and (len(chunk) == max_entities or chunk_bytes + size > max_bytes):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(entity)
        chunk_bytes += size
    if chunk:
        yield chunk


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
        self._clients: dict[str, TableClient] = {}
        self._created: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="archive")

    def close(self) -> None:
        """Stop the writer threads and close the HTTP connections."""
        self._pool.shutdown(wait=True)
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
            event_id = _event_id(event)
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
        for _ in range(_CREATE_ROUNDS):
            try:
                self._submit(table, "create", entities)
                return conflicts
            except HttpResponseError as exc:
                # One entity: ResourceExistsError; a transaction: its error code.
                exists = isinstance(exc, ResourceExistsError)
                if not exists and getattr(exc, "error_code", None) != ALREADY_THERE:
                    raise
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

    def _digests(self, table: str, entities: list[dict[str, Any]]) -> dict[str, str | None]:
        """The content digests of those of the entities that exist (one range query)."""
        keys = sorted(entity["RowKey"] for entity in entities)
        found = self._client(table).query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey le @high",
            parameters={"pk": entities[0]["PartitionKey"], "low": keys[0], "high": keys[-1]},
            select=["RowKey", "content_digest"],
        )
        wanted = set(keys)
        return {e["RowKey"]: e.get("content_digest") for e in found if e["RowKey"] in wanted}

    def delete_user(self, user_id: uuid.UUID | str) -> int:
        """Erase every entity naming the user; return how many entities were deleted.

        Partition queries and point deletes only: the user's own partition (their
        events and their references), the events they are a subject of, and the
        references their own events left in other users' partitions.
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
                        elsewhere.add((subject, entity["RowKey"] + REF_SUFFIX))
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
                if not entity["RowKey"].endswith(REF_SUFFIX):
                    yield _record(table, ACTOR_ROLE, entity["user_id"], entity, entity)
                    continue
                try:
                    target = client.get_entity(entity["ref_partition"], entity["ref_row"])
                except ResourceNotFoundError:
                    target = None
                yield _record(table, entity["role"], entity["ref_partition"], entity, target)

    def read_user_page(
        self, user_id: uuid.UUID | str, after: tuple[str, str] | None, limit: int
    ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """Up to ``limit`` records of ``read_user``, resuming after (table, RowKey).

        Returns the records and the position to resume from (None at the end):
        keyset paging on the partition's RowKeys, so a page costs the same
        wherever it starts.
        """
        records: list[dict[str, Any]] = []
        for table in self.list_archive_tables():
            if after is not None and table < after[0]:
                continue
            query, parameters = "PartitionKey eq @pk", {"pk": partition_key(user_id)}
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
            return _record(table, ACTOR_ROLE, entity["user_id"], entity, entity)
        try:
            target = client.get_entity(entity["ref_partition"], entity["ref_row"])
        except ResourceNotFoundError:
            target = None
        return _record(table, entity["role"], entity["ref_partition"], entity, target)

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
        entities: Iterator[dict[str, Any]] = self._client(table).query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition_key(user_id)}
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
        if len(entities) > 1:
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


def _record(
    table: str,
    role: str,
    actor_id: str,
    entity: Mapping[str, Any],
    target: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "table": table,
        "event_id": entity["event_id"],
        "type": entity["type"],
        "role": role,
        "actor_id": actor_id,
        "occurred_at": entity["occurred_at"],
        "event": None if target is None else json.loads(event_json(target)),
    }


@lru_cache(maxsize=8)
def _archive(connection: StorageConnection, table_prefix: str) -> ArchiveRepository:
    return ArchiveRepository(connection, table_prefix)


def get_archive() -> ArchiveRepository:
    """The process-wide archive for the configured account and table prefix."""
    settings = get_settings()
    return _archive(settings.archive_storage, settings.archive_table_prefix)
