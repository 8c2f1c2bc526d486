"""The record of disclosures (FERPA 34 CFR 99.32): every read of one person's
data and every refused attempt, naming who, what, when and which rule; never
the data itself."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from shared.errors import InvalidInput
from shared.models.privacy import Disclosure, Disclosures

log = logging.getLogger(__name__)

DISCLOSED, REFUSED = "disclosed", "refused"
BAD_CURSOR = "cursor must be a next_cursor from an earlier page"


def bad_cursor() -> InvalidInput:
    """A cursor that no earlier page gave out."""
    return InvalidInput(BAD_CURSOR, field="cursor", rule="next_cursor")


class AccessLogStore(Protocol):
    def record_access(
        self,
        subject_id: uuid.UUID | None,
        accessor: str,
        action: str,
        resource: str,
        outcome: str = DISCLOSED,
        rule: str | None = None,
    ) -> None: ...

    def disclosures(
        self, subject_id: uuid.UUID, before_id: int | None, limit: int
    ) -> list[dict[str, Any]]: ...


def record(
    store: AccessLogStore,
    *,
    subject_id: uuid.UUID | None,
    accessor: str,
    action: str,
    resource: str,
    outcome: str = DISCLOSED,
    rule: str | None = None,
) -> None:
    """Add one entry; when PostgreSQL cannot take it, the function log keeps it.

    The read is still answered: the real-time views serve from Redis while
    PostgreSQL is down, and refusing them would break that promise; the log
    line (kept by Application Insights) carries the same who/what/when.
    """
    try:
        store.record_access(subject_id, accessor, action, resource, outcome, rule)
    except psycopg.OperationalError as exc:
        log.error(
            "access log unavailable (%s); %s: subject=%s accessor=%s action=%s resource=%s "
            "rule=%s at=%s",
            exc,
            outcome,
            subject_id,
            accessor,
            action,
            resource,
            rule,
            datetime.now(UTC).isoformat(),
        )


def disclosures(
    store: AccessLogStore, subject_id: uuid.UUID, cursor: str | None, limit: int
) -> Disclosures:
    """The subject's record of disclosures, newest first, paged by entry id."""
    before = None
    if cursor:
        if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
            raise bad_cursor()
        before = int(cursor)
    rows = store.disclosures(subject_id, before, limit)
    return Disclosures(
        user_id=subject_id,
        disclosures=[Disclosure.model_validate(row) for row in rows],
        next_cursor=str(rows[-1]["id"]) if len(rows) == limit else None,
    )
