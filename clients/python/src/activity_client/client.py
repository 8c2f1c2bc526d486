"""ActivityClient: record activity events from any thread; they reach the API in batches.

Events wait in a bounded in-memory buffer. Background sender threads take
them in order, up to ``max_batch`` at a time (sooner once the oldest has
waited ``flush_interval`` seconds), and POST them to ``/api/v1/events``,
retrying transient failures with the same event ids until the server gives a
final answer. See the package README for the guarantees and limits.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from activity_client import batching, retry
from activity_client.results import (
    BatchResult,
    BufferFull,
    ClientClosed,
    EventTooLarge,
    FieldError,
    Rejection,
    Stats,
)

log = logging.getLogger("activity_client")

EVENTS_PATH = "/api/v1/events"
EVENT_TYPES = (
    "lesson_progress",
    "quiz_attempt",
    "forum_activity",
    "content_activity",
    "feedback",
    "live_class_engagement",
)
# How long close() waits for sender threads after giving up on what was left
# (a request already on the wire finishes or times out on its own).
_JOIN_GRACE_SECONDS = 1.0


def events_url(base_url: str) -> str:
    """The ingest URL for an app's base URL (``/api/v1/events`` appended once)."""
    base = base_url.strip().rstrip("/").removesuffix(EVENTS_PATH).removesuffix("/api")
    return base + EVENTS_PATH


@dataclass(slots=True)
class _Item:
    seq: int  # order of arrival; flush() waits for everything up to its call's
    event_id: str
    body: bytes  # the event, encoded once at send()
    queued_at: float  # time.monotonic()


class ActivityClient:
    """A thread-safe, batching, retrying client for ``POST /api/v1/events``.

    ``base_url`` is the app's root, e.g. ``http://localhost:7071``. ``key``
    is sent as ``x-functions-key``; ``headers`` are added to every request.

    ``max_buffer`` bounds the events held (buffered, in flight or waiting to
    be retried). When it is reached, ``send`` blocks until room frees up, at
    most ``buffer_timeout`` seconds (``None``: no limit, ``0``: not at all),
    then raises ``BufferFull``: events are never dropped silently.

    Transient failures (503, 429, 408, other 5xx, connection errors and
    timeouts) are retried with the same body, so the same event ids, after
    the server's ``Retry-After`` or an exponential back-off with jitter
    (``retry_base`` doubling up to ``retry_max`` seconds); ``max_attempts``
    (``None``: unlimited) caps the requests per batch. A 413 halves the batch.
    Other answers are final: refused events (422, 400, 415, ...) are reported
    through ``on_result``, ``rejections()`` and the ``activity_client`` logger.

    ``on_result`` is called from a sender thread once per request outcome; it
    must be quick and must not call ``flush`` or ``close``.

    At interpreter exit the client flushes for at most ``exit_timeout``
    seconds (``close`` does the same, with its own timeout).
    """

    def __init__(
        self,
        base_url: str,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        max_batch: int = 100,
        flush_interval: float = 1.0,
        max_buffer: int = 10_000,
        timeout: float = 10.0,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        buffer_timeout: float | None = 30.0,
        max_attempts: int | None = None,
        concurrency: int = 1,
        exit_timeout: float = 10.0,
        on_result: Callable[[BatchResult], None] | None = None,
        max_rejections: int = 1000,
    ) -> None:
        if not 1 <= max_batch <= batching.MAX_EVENTS_PER_REQUEST:
            raise ValueError(
                f"max_batch must be between 1 and {batching.MAX_EVENTS_PER_REQUEST} "
                "(the API's limit per request)"
            )
        if flush_interval <= 0 or timeout <= 0 or retry_base <= 0 or retry_max < retry_base:
            raise ValueError(
                "flush_interval, timeout and retry_base must be positive, retry_max >= retry_base"
            )
        if max_buffer < 1 or concurrency < 1 or max_rejections < 0:
            raise ValueError("max_buffer and concurrency must be at least 1")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None: no limit)")
        if buffer_timeout is not None and buffer_timeout < 0:
            raise ValueError("buffer_timeout must not be negative (or None: no limit)")

        self.url = events_url(base_url)
        self._max_batch = max_batch
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._buffer_timeout = buffer_timeout
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._max_attempts = max_attempts
        self._exit_timeout = exit_timeout
        self._on_result = on_result
        self._rng = random.Random()

        request_headers = {"Content-Type": "application/json", **(headers or {})}
        if key:
            request_headers["x-functions-key"] = key
        self._http = httpx.Client(
            headers=request_headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

        # Everything below is guarded by _lock. Senders wait on _work for
        # events; send() (buffer full) and flush() wait on _done for results.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[_Item] = deque()
        self._queued_bytes = 0
        self._pending = 0  # queued + in flight
        self._inflight: dict[int, int] = {}  # batch token -> its first seq
        self._tokens = itertools.count()
        self._next_seq = 0
        self._flushing = 0  # flush() calls waiting: send partial batches now
        self._closing = False  # no more events; senders drain and stop
        self._closed = False
        self._abort = threading.Event()  # give up on what is left (close timed out)
        self._close_lock = threading.Lock()
        # Totals for stats().
        self._queued_total = 0
        self._accepted = 0
        self._rejected = 0
        self._undelivered = 0
        self._requests = 0
        self._splits = 0
        self._retries: Counter[str] = Counter()
        self._rejections: deque[Rejection] = deque(maxlen=max_rejections)

        self._threads = [
            threading.Thread(target=self._sender, name=f"activity-client-{n}", daemon=True)
            for n in range(1, concurrency + 1)
        ]
        for thread in self._threads:
            thread.start()
        atexit.register(self._close_at_exit)

    # --- recording events ------------------------------------------------------

    def lesson_progress(self, **fields: Any) -> str:
        """student_id, lesson_id, started_at, completed_at?, progress_percent,
        video_watch_time, sections_read, last_accessed_at. Returns the event_id."""
        return self._typed("lesson_progress", fields)

    def quiz_attempt(self, **fields: Any) -> str:
        """student_id, quiz_id, attempt_id, attempt_number, answers, score,
        submitted_at, duration_seconds, is_passed. Returns the event_id."""
        return self._typed("quiz_attempt", fields)

    def forum_activity(self, **fields: Any) -> str:
        """user_id, post_id, thread_id, action_type (post/reply/like), content
        (post, reply), created_at, parent_post_id (reply). Returns the event_id."""
        return self._typed("forum_activity", fields)

    def content_activity(self, **fields: Any) -> str:
        """teacher_id, content_id, content_type (lesson/quiz/assignment), action
        (created/updated), timestamp, title, changes_summary (updated). Returns the event_id."""
        return self._typed("content_activity", fields)

    def feedback(self, **fields: Any) -> str:
        """teacher_id, student_id, submission_id, feedback_text, feedback_type
        (text/rubric/audio), created_at, score?. Returns the event_id."""
        return self._typed("feedback", fields)

    def live_class_engagement(self, **fields: Any) -> str:
        """teacher_id, class_id, session_id, joined_at, left_at?, duration_seconds,
        polls_launched, messages_sent. Returns the event_id."""
        return self._typed("live_class_engagement", fields)

    def send(self, event: Mapping[str, Any]) -> str:
        """Buffer one raw event (a mapping with ``type``); returns its ``event_id``.

        An ``event_id`` already in the event is kept, so sending the same
        event twice is a safe re-send; otherwise a new UUID is added (to a
        copy: the caller's mapping is never changed). Values are encoded now:
        later changes to the mapping do not affect what is sent. datetimes
        (with a time zone) and UUIDs are converted to strings.

        Raises TypeError/ValueError for an event that is not JSON or has no
        ``type`` or a malformed ``event_id``, ``EventTooLarge`` over 1 MiB,
        ``BufferFull`` (see the class) and ``ClientClosed`` after ``close``.
        """
        if not isinstance(event, Mapping):
            raise TypeError(f"an event is a mapping, not {type(event).__name__}")
        event_type = event.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("an event needs a 'type' (e.g. 'quiz_attempt')")
        raw_id = event.get("event_id")
        if raw_id is None:
            event_id = str(uuid.uuid4())
            event = {"type": event_type, "event_id": event_id} | {
                name: value for name, value in event.items() if name != "event_id"
            }
        else:
            try:
                event_id = str(uuid.UUID(str(raw_id)))
            except ValueError:
                raise ValueError(f"event_id must be a UUID, not {raw_id!r}") from None
            if event_id != raw_id:
                event = {**event, "event_id": event_id}
        body = batching.encode_event(event)
        if len(body) > batching.MAX_EVENT_BYTES:
            raise EventTooLarge(
                f"event {event_id} is {len(body)} bytes encoded; one request carries at most "
                f"{batching.MAX_REQUEST_BYTES} bytes"
            )
        self._enqueue(event_id, body)
        return event_id

    def _typed(self, event_type: str, fields: dict[str, Any]) -> str:
        if "type" in fields:
            raise TypeError(f"{event_type}() sets 'type' itself; pass the event's fields only")
        return self.send({"type": event_type, **fields})

    def _enqueue(self, event_id: str, body: bytes) -> None:
        with self._lock:
            if self._closing:
                raise ClientClosed("the client is closed; it takes no more events")
            if self._pending >= self._max_buffer:
                self._wait_for_room()
            item = _Item(self._next_seq, event_id, body, time.monotonic())
            self._next_seq += 1
            self._queue.append(item)
            self._queued_bytes += len(body)
            self._pending += 1
            self._queued_total += 1
            if (
                len(self._queue) == 1
                or len(self._queue) >= self._max_batch
                or self._queued_bytes >= batching.MAX_REQUEST_BYTES
            ):
                self._work.notify()

    def _wait_for_room(self) -> None:
        """Block (lock held) until the buffer has room; BufferFull after buffer_timeout."""
        timeout = self._buffer_timeout
        if threading.current_thread() in self._threads:
            timeout = 0.0  # an on_result callback must not wait for its own thread
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._pending >= self._max_buffer:
            if self._closing:
                raise ClientClosed("the client was closed while send() waited for room")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise BufferFull(
                    f"{self._pending} events are waiting to be delivered (max_buffer "
                    f"{self._max_buffer}) and none was delivered within {timeout:g} s; "
                    "this event was not buffered (is the server reachable?)"
                )
            self._done.wait(remaining)

    # --- waiting for delivery ----------------------------------------------------

    def pending(self) -> int:
        """Events buffered or in flight (not yet accepted, refused or given up on)."""
        with self._lock:
            return self._pending

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now and wait until the server has answered for it.

        Returns True once every event sent before this call was accepted or
        refused (or given up on), False if ``timeout`` seconds passed first.
        Events keep being retried after a False.
        """
        if threading.current_thread() in self._threads:
            raise RuntimeError("flush() from on_result would wait for its own thread")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._next_seq
            self._flushing += 1
            self._work.notify_all()
            try:
                while not self._settled(target):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._done.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def _settled(self, target: int) -> bool:
        """(lock held) Whether every event with seq < target has been resolved."""
        if self._queue and self._queue[0].seq < target:
            return False
        return all(first >= target for first in self._inflight.values())

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the sender threads; True if everything was delivered.

        With a ``timeout``, what is still undelivered after it is given up on:
        reported through ``on_result`` (``BatchResult.undelivered``) and
        logged at ERROR. ``send`` raises ``ClientClosed`` from the start of
        the call. Calling it again does nothing.
        """
        if threading.current_thread() in self._threads:
            raise RuntimeError("close() from on_result would wait for its own thread")
        with self._close_lock:
            if self._closed:
                with self._lock:
                    return self._pending == 0
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._lock:
                self._closing = True
                self._work.notify_all()
                self._done.notify_all()  # send() calls waiting for room: ClientClosed
            delivered = self.flush(timeout)
            left: list[_Item] = []
            if not delivered:
                self._abort.set()  # senders waiting to retry give up now
                with self._lock:
                    left = list(self._queue)
                    self._queue.clear()
                    self._queued_bytes = 0
                    self._pending -= len(left)
                    self._work.notify_all()
                    self._done.notify_all()
                if left:
                    self._report(
                        self._given_up(left, error="the client was closed before they were sent")
                    )
            for thread in self._threads:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(remaining if delivered else _JOIN_GRACE_SECONDS)
            with self._lock:
                in_flight = self._pending
            if in_flight:
                log.error(
                    "activity_client: %d events were still in flight at close; "
                    "whether the server took them is unknown",
                    in_flight,
                )
            else:
                self._http.close()
            self._closed = True
            atexit.unregister(self._close_at_exit)
            return delivered

    def _close_at_exit(self) -> None:
        if not self._closed:
            self.close(timeout=self._exit_timeout)

    def __enter__(self) -> ActivityClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what happened -------------------------------------------------------------

    def rejections(self) -> list[Rejection]:
        """The latest events the server refused (at most ``max_rejections``), oldest first."""
        with self._lock:
            return list(self._rejections)

    def stats(self) -> Stats:
        """Running totals: queued, accepted, rejected, undelivered, requests, retries..."""
        with self._lock:
            return Stats(
                queued=self._queued_total,
                accepted=self._accepted,
                rejected=self._rejected,
                undelivered=self._undelivered,
                pending=self._pending,
                requests=self._requests,
                retries=dict(self._retries),
                splits=self._splits,
            )

    # --- the sender threads ----------------------------------------------------------

    def _sender(self) -> None:
        while True:
            with self._lock:
                batch = self._take_batch()
                if batch is None:
                    return
                token = next(self._tokens)
                self._inflight[token] = batch[0].seq
                if self._queue:
                    self._work.notify()  # more to take: wake another sender
            try:
                self._deliver(batch)
            finally:
                with self._lock:
                    del self._inflight[token]
                    self._pending -= len(batch)
                    self._done.notify_all()

    def _take_batch(self) -> list[_Item] | None:
        """(lock held) Wait for the next batch to be due and take it; None: stop."""
        while True:
            if self._abort.is_set():
                return None
            if self._queue:
                now = time.monotonic()
                due = self._queue[0].queued_at + self._flush_interval
                if (
                    len(self._queue) >= self._max_batch
                    or self._queued_bytes >= batching.MAX_REQUEST_BYTES
                    or self._flushing
                    or self._closing
                    or now >= due
                ):
                    sizes = (
                        len(item.body) for item in itertools.islice(self._queue, self._max_batch)
                    )
                    count = batching.batch_length(sizes, self._max_batch)
                    batch = [self._queue.popleft() for _ in range(count)]
                    self._queued_bytes -= sum(len(item.body) for item in batch)
                    return batch
                self._work.wait(due - now)
            elif self._closing:
                return None
            else:
                self._work.wait()

    def _deliver(self, batch: list[_Item]) -> None:
        """Send one batch until every event in it has a final outcome (413: in halves)."""
        parts = [batch]
        while parts:
            part = parts.pop()
            try:
                halves = self._send_part(part)
            except Exception as exc:  # a bug here must not strand the events or the thread
                log.exception("activity_client: unexpected error sending %d events", len(part))
                self._report(self._given_up(part, error=f"{type(exc).__name__}: {exc}"))
                continue
            if halves is not None:
                parts.extend(reversed(halves))

    def _send_part(self, part: list[_Item]) -> tuple[list[_Item], list[_Item]] | None:
        """POST ``part`` until a final answer; its halves when the server said 413."""
        body = batching.request_body(item.body for item in part)
        retries: Counter[str] = Counter()
        latencies: list[float] = []
        attempt = 0
        while True:
            if self._abort.is_set():
                self._report(
                    self._given_up(
                        part,
                        error="the client was closed before they were sent",
                        attempts=attempt,
                        retries=retries,
                        latencies=latencies,
                    )
                )
                return None
            attempt += 1
            with self._lock:
                self._requests += 1
            status: int | None = None
            retry_after: float | None = None
            started = time.perf_counter()
            try:
                response = self._http.post(self.url, content=body)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                latencies.append(time.perf_counter() - started)
                status = response.status_code
                if status == 413 and len(part) > 1:
                    with self._lock:
                        self._splits += 1
                    return batching.split_in_half(part)
                if not retry.is_retryable(status):
                    self._report(self._answered(part, response, attempt, retries, latencies))
                    return None
                error = f"HTTP {status}"
                retry_after = retry.parse_retry_after(response.headers.get("Retry-After"))
            if self._max_attempts is not None and attempt >= self._max_attempts:
                self._report(
                    self._given_up(
                        part,
                        error=f"gave up after {attempt} attempts; the last: {error}",
                        status=status,
                        attempts=attempt,
                        retries=retries,
                        latencies=latencies,
                    )
                )
                return None
            reason = retry.retry_reason(status)
            retries[reason] += 1
            with self._lock:
                self._retries[reason] += 1
            delay = retry.retry_delay(
                attempt, retry_after, self._retry_base, self._retry_max, self._rng
            )
            if self._abort.wait(delay):
                self._report(
                    self._given_up(
                        part,
                        error=f"the client was closed while they waited to be retried ({error})",
                        status=status,
                        attempts=attempt,
                        retries=retries,
                        latencies=latencies,
                    )
                )
                return None

    def _answered(
        self,
        part: Sequence[_Item],
        response: httpx.Response,
        attempts: int,
        retries: Mapping[str, int],
        latencies: Sequence[float],
    ) -> BatchResult:
        """The outcome of a final answer: accepted, refused per event, or refused whole."""
        status = response.status_code
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        error: str | None = None
        rejected: list[Rejection] = []
        if status in (202, 422) and isinstance(payload, dict):
            accepted = payload.get("accepted")
            accepted = accepted if isinstance(accepted, int) else 0
            for entry in payload.get("rejected") or []:
                index = entry.get("index") if isinstance(entry, dict) else None
                if not isinstance(index, int) or not 0 <= index < len(part):
                    continue
                errors = tuple(
                    FieldError(str(e.get("field", "")), str(e.get("message", "")))
                    for e in entry.get("errors") or []
                    if isinstance(e, dict)
                )
                item = part[index]
                rejected.append(Rejection(item.event_id, json.loads(item.body), status, errors))
        elif 200 <= status < 300:
            accepted = len(part)  # an answer without per-event detail: the server took them
        else:
            accepted = 0
            detail = payload.get("error") if isinstance(payload, dict) else None
            error = f"HTTP {status}: {detail or response.text[:200] or response.reason_phrase}"
            reason = (FieldError("(request)", error),)
            rejected = [
                Rejection(item.event_id, json.loads(item.body), status, reason) for item in part
            ]
        return BatchResult(
            event_ids=tuple(item.event_id for item in part),
            status=status,
            accepted=accepted,
            rejected=tuple(rejected),
            attempts=attempts,
            retries=dict(retries),
            latencies=tuple(latencies),
            error=error,
        )

    def _given_up(
        self,
        part: Sequence[_Item],
        *,
        error: str,
        status: int | None = None,
        attempts: int = 0,
        retries: Mapping[str, int] | None = None,
        latencies: Sequence[float] = (),
    ) -> BatchResult:
        return BatchResult(
            event_ids=tuple(item.event_id for item in part),
            status=status,
            attempts=attempts,
            retries=dict(retries or {}),
            latencies=tuple(latencies),
            error=error,
            undelivered=tuple(json.loads(item.body) for item in part),
        )

    def _report(self, result: BatchResult) -> None:
        with self._lock:
            self._accepted += result.accepted
            self._rejected += len(result.rejected)
            self._undelivered += len(result.undelivered)
            self._rejections.extend(result.rejected)
        if result.rejected:
            first = result.rejected[0]
            reason = "; ".join(f"{e.field}: {e.message}" for e in first.errors[:3])
            log.warning(
                "activity_client: the server refused %d of %d events (HTTP %s); first, %s: %s",
                len(result.rejected),
                result.size,
                result.status,
                first.event_id,
                reason,
            )
        if result.undelivered:
            log.error(
                "activity_client: %d events not delivered: %s",
                len(result.undelivered),
                result.error,
            )
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:
                log.exception("activity_client: on_result raised")
