"""Storage queue triggers and outputs, behaving like the host's queue listener.

Per queue-triggered function one poller, as in the WebJobs storage extension:

- receive up to `batchSize` messages, each leased for 10 minutes and the lease
  renewed at half-time while the function runs;
- process them concurrently; fetch the next batch once the messages in flight
  drop to `newBatchThreshold`;
- when the queue is empty, wait with randomised exponential back-off from
  100 ms up to `maxPollingInterval`, and go back to 100 ms once a message is
  found; an output binding writing to a watched queue wakes its poller at once;
- on success delete the message; on failure, if it has been dequeued
  `maxDequeueCount` times, copy its original text to `<queue>-poison` and
  delete it, otherwise make it visible again after `visibilityTimeout`;
  a message already dequeued more often than that (a crash mid-run) goes to
  the poison queue without running, and so does one that is not valid base64;
- when that completion step finds the storage account unreachable, it is
  retried with growing pauses while the message's lease holds (the real
  listener gives up after its SDK retries and lets the message reappear when
  the lease ends, up to 10 minutes later; the functions are idempotent, so
  both end the same way, this one sooner).

Unlike the real listener, which waits for a missing queue to appear, the
poller creates its queue at start so that messages can be sent at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import azure.functions as func
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueMessage as StoredMessage
from azure.storage.queue.aio import QueueClient

from devhost.activity import Activity
from devhost.invoker import Invoker
from devhost.loader import FunctionSpec, QueueOutput, QueueTrigger
from devhost.settings import MIN_POLLING_INTERVAL, QueueOptions
from devhost.shutdown import InFlight
from shared.repositories.storage import async_queue_client, new_async_credential
from shared.settings import StorageConnection

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

log = logging.getLogger("devhost")

# How long a received message stays invisible while its function runs (renewed at half-time),
# as the real listener leases it. Tests that cut storage off mid-receive shorten it with
# DEVHOST_MESSAGE_LEASE_SECONDS (local host only), so messages stranded by the cut come back
# within the test's patience instead of 10 minutes later.
MESSAGE_LEASE = timedelta(minutes=10)
LEASE_SETTING = "DEVHOST_MESSAGE_LEASE_SECONDS"
POISON_SUFFIX = "-poison"
# Pauses between tries of a completion (delete, poison, release) while storage is unreachable.
COMPLETION_RETRY_FIRST = 1.0
COMPLETION_RETRY_MAX = 15.0
# Per storage call try, in seconds (Azurite answers in milliseconds).
STORAGE_CONNECT_TIMEOUT = 5
STORAGE_READ_TIMEOUT = 20


def encode_message(body: str | bytes, encoding: str) -> str:
    """The text stored in the queue for a message body, per host.json messageEncoding."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")


def decode_message(content: str, encoding: str) -> bytes:
    """The body a function sees for stored text; ValueError when it is not valid base64."""
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"message is not valid base64: {exc}") from exc
    return content.encode("utf-8")


def queue_trigger_value(fn: FunctionSpec, body: bytes, message: StoredMessage) -> Any:
    """The trigger argument: the message, or its body when annotated `str` or `bytes`."""
    if fn.trigger_body_type is bytes:
        return body
    if fn.trigger_body_type is str:
        return body.decode("utf-8")
    # The worker hands functions this subclass, the one carrying dequeue_count & co.
    return TriggerMessage(  # type: ignore[no-untyped-call]
        id=message.id,
        body=body,
        dequeue_count=message.dequeue_count,
        insertion_time=message.inserted_on,
        expiration_time=message.expires_on,
        time_next_visible=message.next_visible_on,
        pop_receipt=message.pop_receipt,
    )


class QueueClients:
    """Async queue clients, one per (connection, queue), and which queues exist.

    A connection string builds its client directly; an identity-based connection
    gets its token from an async credential owned here (one per identity, closed
    with the clients), built by the app's shared/repositories/storage.py like every
    other storage client.
    """

    def __init__(self) -> None:
        self._clients: dict[tuple[StorageConnection, str], QueueClient] = {}
        self._existing: set[tuple[StorageConnection, str]] = set()
        self._credentials: dict[tuple[bool, str | None], AsyncTokenCredential] = {}
        self._tls_session: aiohttp.ClientSession | None = None

    def get(self, connection: StorageConnection, queue_name: str) -> QueueClient:
        key = (connection, queue_name)
        if key not in self._clients:
            # The SDK's default retries wait 15 s, 18 s, then 42 s, and each try may wait
            # 300 s to connect and 300 s to read: far too long for a local host whose pollers
            # retry anyway, and a hung emulator would hold every call for many minutes.
            # Two quick retries ride out a busy emulator.
            self._clients[key] = async_queue_client(
                connection,
                queue_name,
                self._credential(connection),
                initial_backoff=1,
                increment_base=1,
                retry_total=2,
                connection_timeout=STORAGE_CONNECT_TIMEOUT,
                read_timeout=STORAGE_READ_TIMEOUT,
                **self._tls_options(connection),
            )
        return self._clients[key]

    def _tls_options(self, connection: StorageConnection) -> dict[str, Any]:
        """For identity-based connections (HTTPS): trust what the app's clients trust.

        The app's clients (requests) read `REQUESTS_CA_BUNDLE` at each request; aiohttp
        builds its default TLS context once, on import, from the CA files known then, so a
        bundle named later (local.settings.json Values, a test) would not reach these
        clients. With a bundle, they share one session whose TLS context trusts it (built
        once: the SDK's `connection_verify=<file>` would load the file at every request).
        Connection strings are left exactly as they were.
        """
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
        if not connection.identity_based or not bundle:
            return {}
        if self._tls_session is None:
            context = ssl.create_default_context(cafile=bundle)
            # As azure-core opens its own sessions: proxies from the environment, no
            # cookies, bodies decompressed by the SDK.
            self._tls_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                trust_env=True,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        transport = AioHttpTransport(
            session=self._tls_session,
            session_owner=False,
            connection_timeout=STORAGE_CONNECT_TIMEOUT,
            read_timeout=STORAGE_READ_TIMEOUT,
        )
        return {"transport": transport}

    def _credential(self, connection: StorageConnection) -> AsyncTokenCredential | None:
        if not connection.identity_based:
            return None
        key = (connection.managed_identity, connection.client_id)
        if key not in self._credentials:
            self._credentials[key] = new_async_credential(connection)
        return self._credentials[key]

    async def ensure_queue(self, connection: StorageConnection, queue_name: str) -> QueueClient:
        client = self.get(connection, queue_name)
        if (connection, queue_name) not in self._existing:
            with contextlib.suppress(ResourceExistsError):
                await client.create_queue()
            self._existing.add((connection, queue_name))
        return client

    async def close(self) -> None:
        clients = list(self._clients.values())
        credentials = list(self._credentials.values())
        self._clients.clear()
        self._credentials.clear()
        for client in clients:
            await client.close()
        for credential in credentials:
            await credential.close()
        if self._tls_session is not None:
            session, self._tls_session = self._tls_session, None
            await session.close()


class QueueOutputWriter:
    """Writes what a function set on a queue output binding."""

    def __init__(self, clients: QueueClients, encoding: str, notify: Callable[[str], None]) -> None:
        self._clients = clients
        self._encoding = encoding
        self._notify = notify

    async def __call__(self, output: QueueOutput, value: Any) -> None:
        bodies = _output_bodies(value)
        if not bodies:
            return
        client = await self._clients.ensure_queue(output.connection, output.queue_name)
        await asyncio.gather(
            *(client.send_message(encode_message(b, self._encoding)) for b in bodies)
        )
        self._notify(output.queue_name)


def _output_bodies(value: Any) -> list[str | bytes]:
    """The messages an output value stands for (the shapes the worker accepts)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [value]
    if isinstance(value, func.QueueMessage):
        return [value.get_body()]
    if isinstance(value, Iterable) and not isinstance(value, dict):
        items = list(value)
        if all(isinstance(item, (str, bytes, func.QueueMessage)) for item in items):
            return [body for item in items for body in _output_bodies(item)]
    raise TypeError(f"a queue output takes str, bytes or QueueMessage (or a list), not {value!r}")


class Backoff:
    """The listener's randomised exponential back-off between empty polls."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self._minimum, self._maximum = minimum, maximum
        self._current = minimum
        self._exponent = 0

    def next_delay(self, found_message: bool) -> float:
        if found_message:
            self._current, self._exponent = self._minimum, 1
        elif self._current != self._maximum:
            delay = self._minimum
            if self._exponent > 0:
                jitter = random.uniform(0.8, 1.2)
                delay += jitter * 2 ** (self._exponent - 1) * self._minimum
            if delay < self._maximum:
                self._current, self._exponent = delay, self._exponent + 1
            else:
                self._current = self._maximum
        return self._current


@dataclass
class _Lease:
    message_id: str
    pop_receipt: str
    visible_again: datetime | None  # when the message reappears unless deleted first

    def redelivery_note(self) -> str:
        when = (
            f"by {self.visible_again.astimezone(UTC):%H:%M:%S} UTC"
            if self.visible_again is not None
            else f"within {_lease_seconds()} s"
        )
        return f"not deleted, so the queue delivers it again once its lease ends ({when})"


class QueuePoller:
    """Runs one queue-triggered function for the messages of its queue."""

    def __init__(
        self,
        fn: FunctionSpec,
        options: QueueOptions,
        *,
        clients: QueueClients,
        invoker: Invoker,
        activity: Activity,
        in_flight: InFlight,
        eager: Callable[[], bool],
    ) -> None:
        assert isinstance(fn.trigger, QueueTrigger)
        self.fn = fn
        self.queue_name = fn.trigger.queue_name
        self.poison_queue_name = self.queue_name + POISON_SUFFIX
        self._connection = fn.trigger.connection
        self._options = options
        self._clients = clients
        self._invoker = invoker
        self._activity = activity
        self._in_flight = in_flight
        self._eager = eager  # someone waits for idle: poll fast and report empty queues
        self._backoff = Backoff(
            MIN_POLLING_INTERVAL.total_seconds(), options.max_polling_interval.total_seconds()
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._processing: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        # monotonic start of the last receive that found the queue completely empty
        self.confirmed_empty_at = float("-inf")

    async def prepare(self) -> None:
        await self._clients.ensure_queue(self._connection, self.queue_name)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"poll {self.queue_name}")

    def wake(self) -> None:
        self._wake.set()

    def stop_polling(self) -> asyncio.Task[None] | None:
        """Stop fetching at once, even mid-receive; returns the polling task, now cancelled.

        The messages in flight are not touched: they are in the host's InFlight.
        """
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        return self._task

    async def _run(self) -> None:
        found_since_delay = False
        while not self._stopping:
            started = time.monotonic()
            try:
                batch: list[StoredMessage] | None = await self._receive()
            except AzureError as exc:  # storage down or the queue deleted: back off, retry
                log.warning("Queue '%s': receive failed: %s", self.queue_name, exc)
                batch = None
            except Exception:  # anything else must not end the poller silently
                log.exception("Queue '%s': receive failed", self.queue_name)
                batch = None
            if batch:
                found_since_delay = True
                for message in batch:
                    lease = _Lease(message.id, str(message.pop_receipt), message.next_visible_on)
                    task = asyncio.create_task(self._process(message, lease))
                    self._processing.add(task)
                    task.add_done_callback(self._processing.discard)
                    label = f"queue '{self.queue_name}': message {message.id}"
                    self._in_flight.add(
                        task, f"{label} (Functions.{self.fn.name})", lease.redelivery_note
                    )
                while len(self._processing) > self._options.new_batch_threshold:
                    await asyncio.wait(self._processing, return_when=asyncio.FIRST_COMPLETED)
                continue
            if batch is not None and self._eager():
                await self._confirm_empty(started)
            delay = self._backoff.next_delay(found_since_delay)
            found_since_delay = False
            if self._eager():
                delay = min(delay, MIN_POLLING_INTERVAL.total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()

    async def _receive(self) -> list[StoredMessage]:
        client = self._clients.get(self._connection, self.queue_name)
        size = self._options.batch_size
        pages = client.receive_messages(
            messages_per_page=size,
            max_messages=size,
            visibility_timeout=_lease_seconds(),
        ).by_page()
        # One request per poll: the pager would otherwise ask again after a short page.
        async for page in pages:
            return [message async for message in page]
        return []

    async def _confirm_empty(self, started: float) -> None:
        client = self._clients.get(self._connection, self.queue_name)
        try:
            properties = await client.get_queue_properties()
        except AzureError:
            return  # not confirmed this time; the next poll tries again
        # The count includes invisible messages, such as failed ones waiting for a retry.
        if properties.approximate_message_count == 0:
            self.confirmed_empty_at = started
            self._activity.notify()

    async def _process(self, message: StoredMessage, lease: _Lease) -> None:
        self._activity.begin()
        try:
            await self._handle(message, lease)
        except Exception:
            log.exception("Queue '%s': message %s was not completed", self.queue_name, message.id)
        finally:
            self._activity.end()

    async def _handle(self, message: StoredMessage, lease: _Lease) -> None:
        max_dequeue = self._options.max_dequeue_count
        if message.dequeue_count is not None and message.dequeue_count > max_dequeue:
            await self._move_to_poison(message, lease)
            return
        try:
            body = decode_message(message.content, self._options.message_encoding)
        except ValueError as exc:
            log.error("Queue '%s': message %s: %s", self.queue_name, message.id, exc)
            await self._move_to_poison(message, lease)
            return
        renewal = asyncio.create_task(self._keep_leased(lease))
        try:
            result = await self._invoker.invoke(
                self.fn,
                queue_trigger_value(self.fn, body, message),
                reason=f"New queue message detected on '{self.queue_name}'.",
            )
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        if result.succeeded:
            await self._complete(lease, lambda: self._delete(lease))
        elif (message.dequeue_count or 0) >= max_dequeue:
            await self._complete(lease, lambda: self._move_to_poison(message, lease))
        else:
            await self._complete(lease, lambda: self._release(lease))

    async def _complete(self, lease: _Lease, step: Callable[[], Awaitable[None]]) -> None:
        """Run a completion step (delete, poison, release), retrying while storage is down.

        The function has run; if the storage account is unreachable just now, the
        message would otherwise stay invisible for the rest of its lease (up to 10
        minutes) and then run again. The step is retried with growing pauses while
        the lease holds and the host is not stopping; after that the message is
        left to reappear, as the real listener leaves it.
        """
        pause = COMPLETION_RETRY_FIRST
        while True:
            try:
                await step()
                return
            except (ServiceRequestError, ServiceResponseError) as exc:
                ends = lease.visible_again
                left = (ends - datetime.now(UTC)).total_seconds() if ends else 0.0
                if self._stopping or left <= pause:
                    raise
                log.warning(
                    "Queue '%s': message %s: storage down at completion, retry in %.0f s: %s",
                    self.queue_name,
                    lease.message_id,
                    pause,
                    exc,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, COMPLETION_RETRY_MAX)

    async def _release(self, lease: _Lease) -> None:
        """Let a failed message be retried once the configured visibility timeout has passed."""
        client = self._clients.get(self._connection, self.queue_name)
        with contextlib.suppress(ResourceNotFoundError):
            await client.update_message(
                lease.message_id,
                lease.pop_receipt,
                visibility_timeout=round(self._options.visibility_timeout.total_seconds()),
            )

    async def _keep_leased(self, lease: _Lease) -> None:
        seconds = _lease_seconds()
        client = self._clients.get(self._connection, self.queue_name)
        while True:
            await asyncio.sleep(seconds / 2)
            try:
                updated = await client.update_message(
                    lease.message_id, lease.pop_receipt, visibility_timeout=seconds
                )
            except AzureError as exc:
                log.warning("Queue '%s': could not renew message lease: %s", self.queue_name, exc)
                return
            lease.pop_receipt = str(updated.pop_receipt)
            lease.visible_again = updated.next_visible_on

    async def _move_to_poison(self, message: StoredMessage, lease: _Lease) -> None:
        log.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            self._options.max_dequeue_count,
            self.poison_queue_name,
        )
        poison = await self._clients.ensure_queue(self._connection, self.poison_queue_name)
        # The stored text as it was, so the poison copy decodes exactly like the original.
        await poison.send_message(message.content)
        await self._delete(lease)

    async def _delete(self, lease: _Lease) -> None:
        client = self._clients.get(self._connection, self.queue_name)
        try:
            await client.delete_message(lease.message_id, lease.pop_receipt)
        except ResourceNotFoundError:
            log.debug("Queue '%s': message %s was already gone", self.queue_name, lease.message_id)


def _lease_seconds() -> int:
    override = os.environ.get(LEASE_SETTING, "").strip()
    if override:
        return max(2, int(override))
    return round(MESSAGE_LEASE.total_seconds())
