"""The archive sink: a queue message's events into the Tables archive.

Erased users' events are dropped (the tombstone), and so are events past the
archive's retention (they would only recreate a monthly table retention
dropped). A second version of an archived event is kept out and recorded
(SPEC 13).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import psycopg

from shared import telemetry
from shared.models.events import ActivityEvent
from shared.repositories.archive import ArchiveRepository
from shared.repositories.postgres import PostgresRepository
from shared.repositories.realtime import RealtimeRepository
from shared.services.privacy import erased_users, users_of, without_erased

log = logging.getLogger(__name__)


def archive_live_events(
    events: Sequence[ActivityEvent],
    received_at: datetime,
    archive: ArchiveRepository,
    realtime: RealtimeRepository,
    postgres: PostgresRepository,
    not_before: datetime | None = None,
) -> int:
    """Archive a message's events except erased users' and those past retention.

    The tombstone is checked again after writing: an erasure that committed in
    between may have swept the archive before this write landed, so the users
    it erased are swept again here. (An erasure committing after this second
    check sweeps the archive itself, after this write.)
    """
    kept = [
        event
        for event in without_erased(events, erased_users(users_of(events), realtime, postgres))
        if not_before is None or event.occurred_at >= not_before
    ]
    if not kept:
        return 0
    written, conflicts = archive.archive_events(kept, received_at)
    if conflicts:
        telemetry.event_conflicts.add(len(conflicts), {"sink": "archive"})
        log.warning(
            "the archive kept the first version of %d event(s) met again with other content: %s",
            len(conflicts),
            ", ".join(conflict.event_id for conflict in conflicts[:20]),
        )
        try:
            postgres.record_conflicts(
                "archive", [(c.event_id, c.first_digest, c.other_digest) for c in conflicts]
            )
        except psycopg.OperationalError as exc:  # the log line above is the record then
            log.error("cannot record archive conflicts in PostgreSQL: %s", exc)
    for user in erased_users(users_of(kept), realtime, postgres):
        archive.delete_user(user)
    return written
