"""The archive's entities: keys, the event entity and its references, sizes, groups.

What an event becomes in Azure Table storage, with no client involved
(``shared.repositories.archive`` writes and reads them; docs/archive.md has the
layout): PartitionKey = one of ``ARCHIVE_PARTITIONS`` buckets, by a hash of the
acting user's id; RowKey = ``{user id}_{event time}_{event_id}``, so a user's
entities are one RowKey range of one partition; the event JSON split into parts
when it is over a property's size; and for every other user the event names a
reference entity in that user's range.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from shared import limits
from shared.models.events import ActivityEvent

ROW_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
TABLE_MONTH_FORMAT = "%Y%m"
REF_SUFFIX = "_ref"
ACTOR_ROLE = "actor"
EVENT_JSON = "event_json"
EVENT_JSON_PARTS = "event_json_parts"

# Keys are built from UUIDs, digits, "T", "Z", "_" and "-" only; an allow-list is
# stricter than the service's deny-list (/ \ # ? and control characters).
_KEY_PATTERN = re.compile(r"[0-9A-Za-z_-]{1,1024}")
# The multipart framing, URL and type annotations of one operation in a
# transaction body, on top of the entity's own JSON (measured: ~900 bytes
# for an event entity; TABLE_BATCH_MAX_BYTES keeps 1 MiB spare besides).
_OPERATION_OVERHEAD_BYTES = 1024


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


def _user(user_id: uuid.UUID | str) -> str:
    """The canonical lowercase UUID (rejects anything else)."""
    return str(uuid.UUID(str(user_id)))


def row_key(user_id: uuid.UUID | str, occurred_at: datetime, event_id: uuid.UUID) -> str:
    """An entity's RowKey in a user's range: the user, sortable event time, the event id."""
    time = occurred_at.astimezone(UTC).strftime(ROW_TIME_FORMAT)
    return check_key(f"{_user(user_id)}_{time}_{event_id}")


@lru_cache(maxsize=65_536)
def partition_key(user_id: uuid.UUID | str) -> str:
    """The partition holding a user's entities: a bucket by a hash of the user id.

    Few partitions per table, so that a message of many users' events is a few
    entity-group transactions, not one per user (docs/archive.md).
    """
    digest = hashlib.sha256(_user(user_id).encode()).digest()
    return f"p{int.from_bytes(digest[:4], 'big') % limits.ARCHIVE_PARTITIONS:03d}"


def user_range(user_id: uuid.UUID | str) -> tuple[str, str]:
    """The RowKeys of a user's entities are ``low <= RowKey < high``."""
    low = check_key(f"{_user(user_id)}_")
    return low, low[:-1] + chr(ord("_") + 1)


def user_of(row: str) -> str:
    """The user whose range a RowKey is in."""
    return row[:36]


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


def archived_id(event: ActivityEvent) -> uuid.UUID:
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
    event_id = archived_id(event)
    occurred_at = event.occurred_at.astimezone(UTC)
    document = event.model_dump(mode="json")
    document["event_id"] = str(event_id)
    event_json = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    key = row_key(event.actor_id, occurred_at, event_id)
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
                "RowKey": ref_key(subject, key),
                "ref_partition": entity["PartitionKey"],
                "ref_row": key,
                "user_id": str(event.actor_id),
                "event_id": str(event_id),
                "type": document["type"],
                "role": role,
                "occurred_at": occurred_at,
                "content_digest": event.content_digest,
            }
        )
    return entities


def ref_key(subject: uuid.UUID | str, event_row: str) -> str:
    """The RowKey of the reference in ``subject``'s range to the event at ``event_row``."""
    return check_key(f"{_user(subject)}{event_row[36:]}{REF_SUFFIX}")


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


def entity_record(
    table: str,
    role: str,
    actor_id: str,
    entity: Mapping[str, Any],
    target: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """An archived event as an export shows it: the entity naming the user, as
    ``role``, and the event itself (``target``; None when a reference outlived it)."""
    return {
        "table": table,
        "event_id": entity["event_id"],
        "type": entity["type"],
        "role": role,
        "actor_id": actor_id,
        "occurred_at": entity["occurred_at"],
        "event": None if target is None else json.loads(event_json(target)),
    }
