"""Queue trigger: write a message's events to PostgreSQL in one transaction.

Errors propagate: the host retries the message and, after maxDequeueCount,
moves it to the poison queue.
"""

from __future__ import annotations

import azure.functions as func

from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name="%PERSIST_QUEUE%", connection="AzureWebJobsStorage")
def persist_events(msg: func.QueueMessage) -> None:
    envelope = get_event_queue().open_envelope(msg.get_body())
    get_postgres().persist_events(envelope.events, envelope.received_at)
