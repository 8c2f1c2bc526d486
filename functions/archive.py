"""Queue trigger: archive a message's events to Azure Table storage.

Upserts keyed by event make a redelivery overwrite, never duplicate; errors
propagate so the host retries and finally dead-letters the message.
"""

from __future__ import annotations

import azure.functions as func

from shared.repositories.archive import get_archive
from shared.repositories.queue import get_event_queue

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name="%ARCHIVE_QUEUE%", connection="AzureWebJobsStorage")
def archive_events(msg: func.QueueMessage) -> None:
    envelope = get_event_queue().open_envelope(msg.get_body())
    get_archive().archive_events(envelope.events, envelope.received_at)
