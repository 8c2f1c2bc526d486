"""Azure Storage queues (and the claim-check blobs behind oversized messages).

Ingest hands every packed envelope to each durable sink's queue (persist,
archive) and answers 202 only once all of them are stored; the realtime queue
gets it only when the inline Redis update failed (catch-up). A failure part-way
removes what was already sent (best effort) and raises ``QueueUnavailable`` so
the client gets a 503 and retries. Retried events keep their ids, so anything left behind
by a failed rollback is a harmless duplicate.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime
from functools import lru_cache
from threading import Lock
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ExponentialRetry as BlobRetry
from azure.storage.queue import ExponentialRetry as QueueRetry
from azure.storage.queue import QueueClient

from shared.models.messages import Envelope, claim_check, parse_envelope
from shared.repositories.queue_rest import QueueSender
from shared.repositories.storage import Connection, blob_service_client, queue_service_client
from shared.settings import StorageConnection, get_settings

log = logging.getLogger(__name__)

# Fail fast: a client waiting on a dead queue is better told 503 quickly (the
# storage SDKs' default retry waits 15 s, then 45 s, between attempts).
_TIMEOUTS: dict[str, Any] = {"connection_timeout": 3, "read_timeout": 10}
_SENDER_TIMEOUTS: dict[str, Any] = {"connect_timeout": 3.0, "read_timeout": 10.0}


def _queue_options() -> dict[str, Any]:
    return _TIMEOUTS | {
        "retry_policy": QueueRetry(initial_backoff=0, increment_base=1, retry_total=2)
    }


def _blob_options() -> dict[str, Any]:
    return _TIMEOUTS | {
        "retry_policy": BlobRetry(initial_backoff=0, increment_base=1, retry_total=2)
    }


class QueueUnavailable(Exception):
    """The queue could not take the events; nothing was accepted."""


class EventQueue:
    """Sends event envelopes to the sink queues; resolves claim checks."""

    def __init__(
        self,
        connection: Connection,
        queue_names: Sequence[str],
        payload_container: str,
        catch_up_queue: str | None = None,
    ) -> None:
        """``connection``: a StorageConnection, or a connection string."""
        self._service = queue_service_client(connection, **_queue_options())
        # The hot path (two sends per accepted request) skips the SDK's pipeline.
        self._sender = QueueSender(self._service, **_SENDER_TIMEOUTS)
        self._blobs = blob_service_client(connection, **_blob_options())
        self._queues = [self._service.get_queue_client(name) for name in queue_names]
        # The realtime queue is written only when the inline Redis update failed.
        self._catch_up = [self._service.get_queue_client(catch_up_queue)] if catch_up_queue else []
        self._container = self._blobs.get_container_client(payload_container)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="enqueue")
        self._ready = False
        self._ready_lock = Lock()
        self._known: set[str] = set()  # queues known to exist (retries, poison)

    def _ensure_created(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            for queue in self._queues + self._catch_up:
                with suppress(ResourceExistsError):
                    queue.create_queue()
            with suppress(ResourceExistsError):
                self._container.create_container()
            self._ready = True

    def send(self, envelopes: Sequence[tuple[bytes, bool]], received_at: datetime) -> None:
        """Store every envelope on every sink queue, or raise ``QueueUnavailable``."""
        self._send(envelopes, received_at, self._queues)

    def send_catch_up(self, envelopes: Sequence[tuple[bytes, bool]], received_at: datetime) -> None:
        """Queue envelopes for the realtime function (Redis missed them), or raise."""
        self._send(envelopes, received_at, self._catch_up)

    def _send(
        self,
        envelopes: Sequence[tuple[bytes, bool]],
        received_at: datetime,
        queues: list[QueueClient],
    ) -> None:
        try:
            self._ensure_created()
            payloads = [
                payload if fits else self._store_blob(payload, received_at)
                for payload, fits in envelopes
            ]
        except AzureError as exc:
            raise QueueUnavailable(str(exc)) from exc
        texts = [base64.b64encode(payload).decode("ascii") for payload in payloads]
        jobs = [(queue, text) for text in texts for queue in queues]
        futures = [
            self._pool.submit(self._sender.send, queue.queue_name, text) for queue, text in jobs
        ]
        sent, failure = [], None
        for (queue, _), future in zip(jobs, futures, strict=True):
            try:
                sent.append((queue, future.result()))
            except AzureError as exc:
                failure = exc
        if failure is not None:
            self._rollback(sent)
            raise QueueUnavailable(str(failure)) from failure

    def _store_blob(self, payload: bytes, received_at: datetime) -> bytes:
        name = f"{received_at:%Y/%m/%d}/{uuid.uuid4()}.json"
        self._container.upload_blob(name, payload, overwrite=True)
        return claim_check(received_at, name)

    @staticmethod
    def _rollback(sent: list[tuple[QueueClient, Any]]) -> None:
        for queue, message in sent:
            try:
                queue.delete_message(message.id, message.pop_receipt)
            except AzureError:
                log.warning("could not withdraw message %s from %s", message.id, queue.queue_name)

    # --- failed messages (shared.services.delivery) ---------------------------------

    def _queue(self, name: str) -> QueueClient:
        queue = self._service.get_queue_client(name)
        if name not in self._known:
            with suppress(ResourceExistsError):
                queue.create_queue()
            self._known.add(name)
        return queue

    def send_later(self, queue: str, body: bytes, delay_seconds: int) -> None:
        """Put a message on ``queue`` again, invisible for ``delay_seconds``."""
        text = base64.b64encode(body).decode("ascii")
        self._queue(queue).send_message(text, visibility_timeout=delay_seconds)

    def dead_letter(self, queue: str, body: bytes) -> None:
        """Move a message to ``<queue>-poison`` as the host would (same body)."""
        self._queue(f"{queue}-poison").send_message(base64.b64encode(body).decode("ascii"))

    def poison_counts(self, queues: Sequence[str]) -> dict[str, int]:
        """Messages waiting in each ``<queue>-poison`` (approximate, as Storage counts)."""
        counts = {}
        for name in queues:
            poison = f"{name}-poison"
            try:
                properties = self._service.get_queue_client(poison).get_queue_properties()
            except ResourceNotFoundError:
                counts[poison] = 0  # nothing was ever dead-lettered
                continue
            counts[poison] = int(properties.approximate_message_count or 0)
        return counts

    def open_envelope(self, body: bytes | str) -> Envelope:
        """Parse a message body, fetching the blob a claim check points to."""
        envelope = parse_envelope(body)
        if envelope.payload_ref is None:
            return envelope
        blob = self._container.download_blob(envelope.payload_ref).readall()
        return parse_envelope(blob)

    def ping(self) -> None:
        """Raise if the queue service does not answer."""
        next(iter(self._service.list_queues(results_per_page=1)), None)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._sender.close()
        self._service.close()
        self._blobs.close()


def replay_poison(connection: Connection, queue_name: str, limit: int | None = None) -> int:
    """Move dead-lettered messages from ``<queue>-poison`` back onto ``<queue>``.

    ``connection``: a StorageConnection, or a connection string. The content is
    resent unchanged (the host put the original there), then the poison copy is
    deleted; a crash in between leaves a duplicate, which every sink ignores.
    Returns how many messages moved.
    """
    service = queue_service_client(connection, **_queue_options())
    source = service.get_queue_client(f"{queue_name}-poison")
    target = service.get_queue_client(queue_name)
    moved = 0
    try:
        source.get_queue_properties()
    except ResourceNotFoundError:
        service.close()
        return 0  # nothing was ever dead-lettered from this queue
    with suppress(ResourceExistsError):
        target.create_queue()
    while limit is None or moved < limit:
        batch = list(
            source.receive_messages(messages_per_page=32, visibility_timeout=60, max_messages=32)
        )
        if not batch:
            break
        for message in batch:
            target.send_message(message.content)
            source.delete_message(message)
            moved += 1
    service.close()
    return moved


@lru_cache(maxsize=4)
def _event_queue(
    connection: StorageConnection, queues: tuple[str, ...], container: str, catch_up: str
) -> EventQueue:
    return EventQueue(connection, queues, container, catch_up)


def get_event_queue() -> EventQueue:
    """The process-wide queue client for the current settings."""
    s = get_settings()
    return _event_queue(
        s.storage,
        (s.persist_queue, s.archive_queue),
        s.payload_container,
        s.realtime_queue,
    )
