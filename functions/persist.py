"""Queue trigger: write a message's events to PostgreSQL in one transaction.

A dependency that is down makes the message wait and retry with growing
delays; a message that can never succeed goes to the poison queue at once
(shared.services.delivery).
"""

from __future__ import annotations

import azure.functions as func

from shared import telemetry
from shared.repositories.postgres import get_postgres
from shared.repositories.queue import get_event_queue
from shared.services.delivery import configured_policy, deliver
from shared.services.privacy import cutoff
from shared.settings import get_settings

bp = func.Blueprint()


def persist(body: bytes) -> None:
    envelope = get_event_queue().open_envelope(body)
    telemetry.record_lag(get_settings().persist_queue, envelope.received_at)
    # Erased users' events are dropped inside the transaction (the tombstone);
    # events past retention too, so retention's deletions are not undone.
    not_before = cutoff(get_settings().retention_postgres_days)
    get_postgres().persist_events(envelope.events, envelope.received_at, not_before=not_before)


@bp.queue_trigger(arg_name="msg", queue_name="%PERSIST_QUEUE%", connection="AzureWebJobsStorage")
def persist_events(msg: func.QueueMessage) -> None:
    queue = get_settings().persist_queue.lower()
    deliver(msg.get_body(), queue, persist, get_event_queue(), configured_policy())
