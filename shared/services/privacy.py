"""Privacy and compliance (SPEC 9): erasure across the three stores, the tombstone
that keeps erased users out, export, the record of disclosures, retention.

docs/privacy.md maps each GDPR right and FERPA requirement to this code.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from pydantic_core import to_jsonable_python
from redis.exceptions import RedisError

from shared.errors import InvalidInput
from shared.models.events import ActivityEvent
from shared.models.privacy import ErasedCounts, ErasureResponse, ExportPage
from shared.repositories.archive import ArchiveRepository
from shared.repositories.archive_entities import InvalidKeyError, check_key
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.services.access_log import bad_cursor
from shared.services.realtime import export_realtime

log = logging.getLogger(__name__)

# --- the tombstone on every write path -------------------------------------------------------


def users_of(events: Iterable[ActivityEvent]) -> set[uuid.UUID]:
    return {user for event in events for user in event.user_ids}


def erased_users(
    users: Iterable[uuid.UUID], realtime: RealtimeRepository, postgres: PostgresRepository
) -> set[uuid.UUID]:
    """Which users are erased: the Redis mirror first, PostgreSQL when it cannot say.

    Raises when neither store answers (a queue function then retries).
    """
    users = set(users)
    if not users:
        return set()
    try:
        mirrored = realtime.erased_among(users)
    except RedisError as exc:
        log.warning("tombstone mirror unavailable, asking PostgreSQL: %s", exc)
        mirrored = None
    return mirrored if mirrored is not None else postgres.erased_among(users)


def without_erased(events: Sequence[ActivityEvent], erased: set[uuid.UUID]) -> list[ActivityEvent]:
    return [event for event in events if erased.isdisjoint(event.user_ids)]


def drop_erased_at_ingest(
    events: list[ActivityEvent], realtime: RealtimeRepository, postgres: PostgresRepository
) -> list[ActivityEvent]:
    """The events to queue: those of erased users are dropped (answered as accepted).

    When neither store can say, all are queued: every sink checks again.
    """
    try:
        erased = erased_users(users_of(events), realtime, postgres)
    except psycopg.OperationalError as exc:
        log.warning("tombstones unknown at ingest, the sinks will drop erased users: %s", exc)
        return events
    return without_erased(events, erased)


# --- erasure --------------------------------------------------------------------------------


def erase_user(
    user_id: uuid.UUID,
    erased_by: str,
    postgres: PostgresRepository,
    archive: ArchiveRepository,
    realtime: RealtimeRepository,
) -> ErasureResponse:
    """Erase the user from every store; idempotent (a repeat erases what is left: nothing).

    Order matters: the Redis mirror of the tombstone first (so the real-time
    path drops the user's events from now on), then PostgreSQL (tombstone and
    rows in one transaction), then the archive, then Redis. Any store being
    down fails the request (503) with the rest undone or harmless to redo.
    """
    realtime.add_tombstone(user_id)
    rows, erased_at = postgres.erase_user(user_id, erased_by=erased_by)
    entities = archive.delete_user(user_id)
    realtime.add_tombstone(user_id)  # again: the mirror may have been reloaded meanwhile
    items = realtime.erase_user(user_id)
    return ErasureResponse(
        user_id=user_id,
        erased=ErasedCounts(postgres=rows, archive=entities, realtime=items),
        erased_at=erased_at,
    )


# --- export -----------------------------------------------------------------------------------

ARCHIVE_SECTION = "archive"
REALTIME_SECTION = "realtime"


def _encode_cursor(section: str, position: Any) -> str:
    raw = json.dumps({"s": section, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        return str(data["s"]), data["p"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise bad_cursor() from None


def _offset(position: Any) -> int:
    if position is None:
        return 0
    if type(position) is not int or not 0 <= position < 2**62:
        raise bad_cursor()
    return position


def _archive_position(position: Any) -> tuple[str, str] | None:
    if position is None:
        return None
    if not (
        isinstance(position, list)
        and len(position) == 2
        and all(isinstance(part, str) for part in position)
    ):
        raise bad_cursor()
    try:
        return position[0], check_key(position[1])
    except InvalidKeyError:
        raise bad_cursor() from None


def export_page(
    user_id: uuid.UUID,
    cursor: str | None,
    limit: int,
    postgres: PostgresRepository,
    archive: ArchiveRepository,
    realtime: RealtimeRepository,
) -> ExportPage:
    """One page of everything held about the user: at most ``limit`` rows/records.

    Sections in order: each PostgreSQL table naming the user, the archive, then
    Redis (one item). Functions buffer HTTP responses, so a heavy user is read
    page by page with ``next_cursor`` instead of streamed.
    """
    tables = [f"{table}.{column}" for table, column in postgres.user_columns()]
    sections = [*tables, ARCHIVE_SECTION, REALTIME_SECTION]
    section, position = (sections[0], None) if cursor is None else _decode_cursor(cursor)
    if section not in sections:
        raise InvalidInput(
            "cursor refers to a section that no longer exists; start again",
            field="cursor",
            rule="section",
        )
    page = ExportPage(user_id=user_id, postgres={}, archive=[], realtime=None, next_cursor=None)
    budget = limit
    for name in sections[sections.index(section) :]:
        if budget == 0:
            page.next_cursor = _encode_cursor(name, position)
            return page
        if name == ARCHIVE_SECTION:
            after = _archive_position(position)
            records, after = archive.read_user_page(user_id, after, budget)
            page.archive = to_jsonable_python(records)
            budget -= len(records)
            if after is not None:
                page.next_cursor = _encode_cursor(name, list(after))
                return page
        elif name == REALTIME_SECTION:
            page.realtime = export_realtime(user_id, realtime)
            budget -= 1
        else:
            table, column = name.split(".")
            offset = _offset(position)
            rows = postgres.export_rows(table, column, user_id, offset, budget)
            if rows:
                page.postgres[name] = to_jsonable_python(rows)
            budget -= len(rows)
            if budget == 0:
                page.next_cursor = _encode_cursor(name, offset + len(rows))
                return page
        position = None
    return page


# --- retention ------------------------------------------------------------------------------


def cutoff(days: int, now: datetime | None = None) -> datetime:
    """The oldest event time a retention window of ``days`` keeps."""
    return (now or datetime.now(UTC)) - timedelta(days=days)


def enforce_retention(
    postgres: PostgresRepository,
    archive: ArchiveRepository,
    postgres_days: int,
    archive_days: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Drop detailed events past their retention window in PostgreSQL and the archive."""
    return {
        "postgres": postgres.enforce_retention(cutoff(postgres_days, now)),
        "archive_tables_dropped": archive.drop_tables_before(cutoff(archive_days, now)),
    }
