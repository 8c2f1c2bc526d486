"""Queue trigger: archive a message's events to Azure Table storage.

Upserts keyed by event make a redelivery overwrite, never duplicate. A
dependency that is down makes the message wait and retry with growing delays;
a message that can never succeed goes to the poison queue at once
(shared.services.delivery).
"""

from __future__ import annotations

import azure.functions as func

from shared import telemetry
from shared.repositories.archive import get_archive
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue
from shared.repositories.realtime import get_realtime
from shared.services.archive_sink import archive_live_events
from shared.services.delivery import configured_policy, deliver
from shared.services.privacy import cutoff
from shared.settings import get_settings

bp = func.Blueprint()


def archive(body: bytes) -> None:
    envelope = get_event_queue().open_envelope(body)
    telemetry.record_lag(get_settings().archive_queue, envelope.received_at)
    # Erased users' events are dropped (the tombstone), and so are events past
    # retention, which would only recreate a monthly table retention dropped.
    archive_live_events(
        envelope.events,
        envelope.received_at,
        get_archive(),
        get_realtime(),
        get_postgres(),
        not_before=cutoff(get_settings().retention_archive_days),
    )


@bp.queue_trigger(arg_name="msg", queue_name="%ARCHIVE_QUEUE%", connection="AzureWebJobsStorage")
def archive_events(msg: func.QueueMessage) -> None:
    queue = get_settings().archive_queue.lower()
    deliver(msg.get_body(), queue, archive, get_event_queue(), configured_policy())
