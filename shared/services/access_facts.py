"""The facts the access rules ask, and where they are answered.

A teacher's "legitimate educational interest" in a student is derived from
the data: the student has activity on content the teacher created, or
received feedback from the teacher. PostgreSQL answers (indexed lookups),
Redis first where it holds the view; answers found true are cached a while.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from redis.exceptions import RedisError

from shared import limits
from shared.repositories.access import get_access
from shared.repositories.realtime import get_realtime

log = logging.getLogger(__name__)


class AccessFacts(Protocol):
    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool: ...
    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool: ...
    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool: ...
    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool: ...


class FactStore(Protocol):
    """What PostgreSQL answers (implemented by ``AccessRepository``)."""

    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool: ...
    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool: ...
    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool: ...
    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool: ...


class FactMirror(Protocol):
    """What Redis can answer first (None: it does not hold that view)."""

    def has_attempted(self, quiz_id: str, student_id: str) -> bool | None: ...
    def has_joined(self, session_id: str, teacher_id: str) -> bool | None: ...


class PositiveCache:
    """Facts found true, kept for a while: interest only grows with new events,
    so a "yes" stays true; a "no" is asked again, so new interest shows at once."""

    def __init__(self, seconds: float, size: int) -> None:
        self._seconds, self._size = seconds, size
        self._until: dict[tuple[str, uuid.UUID, uuid.UUID], float] = {}
        self._lock = threading.Lock()

    def ask(self, key: tuple[str, uuid.UUID, uuid.UUID], answer: Callable[[], bool]) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._until.get(key, 0.0) > now:
                return True
        found = answer()
        if found:
            with self._lock:
                if len(self._until) >= self._size:
                    self._until.clear()  # rare; a bounded cache beats an unbounded one
                self._until[key] = now + self._seconds
        return found


class StoreFacts:
    """The facts, from PostgreSQL (indexed lookups) and Redis where it holds the view.

    The stores are reached through factories, so a caller that passes without
    a fact (an administrator, a program) never opens a connection for one.
    """

    def __init__(
        self,
        store: Callable[[], FactStore],
        mirror: Callable[[], FactMirror],
        cache: PositiveCache,
    ) -> None:
        self._store, self._mirror, self._cache = store, mirror, cache

    def teacher_has_interest(self, teacher_id: uuid.UUID, student_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("interest", teacher_id, student_id),
            lambda: self._store().teacher_has_interest(teacher_id, student_id),
        )

    def teacher_created(self, teacher_id: uuid.UUID, content_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("created", teacher_id, content_id),
            lambda: self._store().teacher_created(teacher_id, content_id),
        )

    def teacher_joined(self, teacher_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("joined", teacher_id, session_id),
            lambda: self._mirrored(
                lambda: self._mirror().has_joined(str(session_id), str(teacher_id)),
                lambda: self._store().teacher_joined(teacher_id, session_id),
            ),
        )

    def student_attempted(self, student_id: uuid.UUID, quiz_id: uuid.UUID) -> bool:
        return self._cache.ask(
            ("attempted", student_id, quiz_id),
            lambda: self._mirrored(
                lambda: self._mirror().has_attempted(str(quiz_id), str(student_id)),
                lambda: self._store().student_attempted(student_id, quiz_id),
            ),
        )

    @staticmethod
    def _mirrored(mirror: Callable[[], bool | None], store: Callable[[], bool]) -> bool:
        # Redis answers while PostgreSQL is down, as the real-time views do; a
        # "no" from Redis is asked again of PostgreSQL (Redis may lag behind).
        try:
            found = mirror()
        except RedisError as exc:
            log.warning("access fact from PostgreSQL, Redis is down: %s", exc)
            found = None
        return True if found else store()


_FACT_CACHE = PositiveCache(limits.ACCESS_FACT_CACHE_SECONDS, limits.ACCESS_FACT_CACHE_SIZE)


def get_access_facts() -> StoreFacts:
    """The facts from the process-wide stores, sharing one cache of positive answers."""
    return StoreFacts(get_access, get_realtime, _FACT_CACHE)
