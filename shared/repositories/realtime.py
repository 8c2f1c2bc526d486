"""Redis: the real-time state (progress bars, leaderboards, notifications,
live dashboards) and the roll-up counters, every key under one prefix.

Every update is applied by one Lua script per event that first claims the
event id (``SET NX``), so a retried request or a redelivered message changes
nothing twice; all of a request's events go in one pipelined round trip.
Merges are order-independent (min/max/union, best score with a deterministic
tie-break), so state never depends on arrival order. The key layout is
shared/repositories/redis_keys.py, the scripts realtime_scripts.py, the
values' encoding realtime_model.py, the expiry policy shared/limits.py; all
documented in docs/realtime.md.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import redis

from shared import telemetry
from shared.limits import (
    DEDUPE_TTL,
    LEADERBOARD_TTL,
    LIVE_SESSION_TTL,
    NOTIFICATIONS_KEPT,
    NOTIFICATIONS_TTL,
    PROGRESS_TTL,
    REBUILD_CHUNK,
)
from shared.models.events import (
    MODEL_BY_TYPE,
    ActivityEvent,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
)
from shared.repositories import realtime_scripts as scripts
from shared.repositories.realtime_model import (
    LESSON_FIELDS,
    Notification,
    bucket_start,
    leaderboard_member,
    parse_redis_ts,
    script_fields,
    student_from_member,
    tombstone_digest,
)
from shared.repositories.realtime_privacy import RealtimePrivacy
from shared.repositories.redis_keys import (
    CLAIM,
    CLAIMS,
    CONFLICTS,
    LEADERBOARD,
    LEADERBOARD_LOADED,
    LESSON,
    LESSON_LOADED,
    LIVE,
    NOTIFICATIONS,
    NOTIFICATIONS_LOADED,
    PROGRESS,
    SEEN,
    STANDINGS,
    VERSION,
    RedisKeys,
    bucket_id,
)
from shared.settings import get_settings

# What importers have always found here (the names moved to the modules above).
__all__ = [
    "NOTIFICATIONS_KEPT",
    "Notification",
    "RealtimeRepository",
    "TombstonesUnavailable",
    "get_realtime",
    "leaderboard_member",
    "parse_redis_ts",
    "tombstone_digest",
]

log = logging.getLogger(__name__)

# A student's fields in a quiz's standings hash that make their leaderboard entry.
_POSITION = ("member", "attempts", "best")


class TombstonesUnavailable(redis.RedisError):
    """The tombstone mirror is missing and its source cannot be read."""


def _mark_hash(pipe: Any, key: str, ttl: int) -> None:
    """Mark a one-hash view as fully held (the marker expires with the data)."""
    pipe.hset(key, "_loaded", "1")
    pipe.expire(key, ttl)


class RealtimeRepository(RealtimePrivacy):
    """Redis access for the real-time views and the roll-up counters."""

    def __init__(
        self,
        url: str,
        prefix: str,
        bucket_seconds: int = 60,
        tombstones: Callable[[], Iterable[uuid.UUID]] | None = None,
    ) -> None:
        self.prefix = prefix
        self.bucket_seconds = bucket_seconds
        # Where the tombstone mirror is reloaded from (PostgreSQL's erased_users);
        # None only for tools and tests that own their prefix: an empty mirror.
        self._tombstones = tombstones
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=30,
            decode_responses=True,
        )
        self.keys = RedisKeys(prefix)
        self._apply = self.client.register_script(scripts.APPLY)
        self._claim = self.client.register_script(scripts.CLAIM)
        self._erase = self.client.register_script(scripts.ERASE)

    def key(self, *parts: object) -> str:
        """A key from its parts joined by ``:`` (for tools and tests; see ``keys``)."""
        return self.prefix + ":".join(str(part) for part in parts)

    # --- writes -----------------------------------------------------------------

    def apply_events(self, events: Sequence[ActivityEvent], received_at: datetime) -> int:
        """Apply events once each, in one round trip; returns how many were new."""
        if not events:
            return 0
        start = bucket_start(received_at, self.bucket_seconds)
        bucket = bucket_id(self.bucket_seconds, start)
        end = start + self.bucket_seconds
        batch = [
            [
                str(event.event_id),
                event.event_type,
                script_fields(event) | {"bucket_end": end, "digest": event.content_digest},
            ]
            for event in events
        ]
        applied, conflicts = self._apply(
            keys=[], args=[self.prefix, DEDUPE_TTL, bucket, json.dumps(batch), "1"]
        )
        result = int(applied)
        if conflicts:
            telemetry.event_conflicts.add(len(conflicts), {"sink": "realtime"})
            log.warning(
                "kept the first version of %d event(s) sent again with other content: %s",
                len(conflicts),
                ", ".join(conflicts[:20]),
            )
        if result == -1:
            # The mirror was lost (flush, restart): reload it, then apply again;
            # events applied before the script saw the missing mirror were none.
            try:
                erased = list(self._tombstones()) if self._tombstones else []
            except Exception as exc:
                # Without the mirror nothing may be applied: to callers this is
                # Redis being unusable (ingest defers, the queue function retries).
                raise TombstonesUnavailable(f"cannot load erasure tombstones: {exc}") from exc
            self.load_tombstones(erased)
            return self.apply_events(events, received_at)
        return result

    def first_versions(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The content digest of each event already applied (its first version), by id."""
        if not event_ids:
            return {}
        found = self.client.mget([self.keys(SEEN, event_id) for event_id in event_ids])
        # "1": a claim written before digests were kept; it cannot tell versions apart.
        return {
            event_id: str(digest)
            for event_id, digest in zip(event_ids, found, strict=True)
            if digest not in (None, "1")
        }

    def conflicts(self) -> dict[str, int]:
        """Second versions the real-time store met and dropped, by where they were met."""
        counts = cast(dict[str, str], self.client.hgetall(self.keys(CONFLICTS)))
        return {where: int(count) for where, count in counts.items()}

    # --- reads --------------------------------------------------------------------

    def progress(self, student_id: str) -> dict[str, str] | None:
        """The student's progress hash, or None when Redis doesn't hold it fully."""
        key = self.keys(PROGRESS, student_id)
        data = cast(dict[str, str], self.client.hgetall(key))
        return data if data.get("_loaded") else None

    def live_session(self, session_id: str) -> dict[str, str] | None:
        data = cast(dict[str, str], self.client.hgetall(self.keys(LIVE, session_id)))
        return data if data.get("_loaded") else None

    def lesson_progress(
        self, lesson_id: str, limit: int
    ) -> list[tuple[str, dict[str, str]]] | None:
        """The lesson's most recently active students with their fields for it.

        None when Redis does not hold the lesson fully: never rebuilt since a
        flush, or a student's progress expired while the lesson stayed active.
        """
        if not self.client.exists(self.keys(LESSON_LOADED, lesson_id)):
            return None
        students = cast(
            list[str], self.client.zrevrange(self.keys(LESSON, lesson_id), 0, limit - 1)
        )
        names = [f"{lesson_id}|{name}" for name in LESSON_FIELDS]
        pipe = self.client.pipeline(transaction=False)
        for student in students:
            pipe.hmget(self.keys(PROGRESS, student), names)
        found = []
        for student, values in zip(students, pipe.execute(), strict=True):
            if values[0] is None:
                return None
            found.append((student, dict(zip(LESSON_FIELDS, values, strict=True))))
        return found

    def view_version(self, view: str, view_id: str) -> str:
        """The version of a live view (its ETag): it changes whenever the view does.

        A view that has never changed since Redis last lost it gets a fresh
        clock-based version, so an old ETag can never match again.
        """
        key = self.keys(VERSION, view, view_id)
        found = self.client.get(key)
        if found is None:
            self.client.set(key, str(time.time_ns() // 1000), nx=True, ex=PROGRESS_TTL)
            found = self.client.get(key)
        return str(found)

    def leaderboard(self, quiz_id: str, limit: int) -> list[dict[str, Any]] | None:
        """Top entries (student, best score, time of that best, attempts)."""
        if not self.client.exists(self.keys(LEADERBOARD_LOADED, quiz_id)):
            return None
        top = cast(
            list[tuple[str, float]],
            self.client.zrevrange(self.keys(LEADERBOARD, quiz_id), 0, limit - 1, withscores=True),
        )
        students = [student_from_member(member) for member, _ in top]
        fields = [f"{s}|{name}" for s in students for name in ("attempts", "at")]
        values = self.client.hmget(self.keys(STANDINGS, quiz_id), fields) if fields else []
        return [
            {
                "student_id": student,
                "best_score": score,
                "attempts": int(values[2 * i] or 0),
                "submitted_at": parse_redis_ts(values[2 * i + 1]),
            }
            for i, (student, (_, score)) in enumerate(zip(students, top, strict=True))
        ]

    def leaderboard_position(self, quiz_id: str, student_id: str) -> dict[str, Any] | None:
        """One student's entry with its 1-based rank; None when Redis lacks the view.

        ``{}`` when the view is loaded and the student has no attempt.
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self.keys(LEADERBOARD_LOADED, quiz_id))
        pipe.hmget(self.keys(STANDINGS, quiz_id), [f"{student_id}|{name}" for name in _POSITION])
        loaded, (member, attempts, best) = pipe.execute()
        if not loaded:
            return None
        if member is None:
            return {}
        rank = self.client.zrevrank(self.keys(LEADERBOARD, quiz_id), member)
        if rank is None:
            return {}
        return {
            "student_id": student_id,
            "rank": int(cast(int, rank)) + 1,
            "best_score": float(best),
            "attempts": int(attempts or 0),
        }

    def has_attempted(self, quiz_id: str, student_id: str) -> bool | None:
        """Whether the student attempted the quiz; None when Redis lacks the view."""
        position = self.leaderboard_position(quiz_id, student_id)
        return None if position is None else bool(position)

    def has_joined(self, session_id: str, teacher_id: str) -> bool | None:
        """Whether the teacher joined the live session; None when Redis lacks the view."""
        loaded, joined = self.client.hmget(
            self.keys(LIVE, session_id), ["_loaded", f"{teacher_id}|joined_at"]
        )
        return None if not loaded else joined is not None

    def notifications(self, user_id: str, limit: int) -> list[Notification] | None:
        if not self.client.exists(self.keys(NOTIFICATIONS_LOADED, user_id)):
            return None
        raw = cast(
            list[str], self.client.zrevrange(self.keys(NOTIFICATIONS, user_id), 0, limit - 1)
        )
        return [Notification.from_payload(item) for item in raw]

    # --- rebuild from PostgreSQL ------------------------------------------------------

    def load_progress(self, student_id: str, rows: Iterable[dict[str, Any]]) -> None:
        """Merge PostgreSQL's state into Redis (the merge is idempotent) and mark it full."""
        key = self.keys(PROGRESS, student_id)
        self._load(LessonProgress, rows, lambda pipe: _mark_hash(pipe, key, PROGRESS_TTL))

    def load_lesson(self, lesson_id: str, rows: Iterable[dict[str, Any]]) -> None:
        """Merge the lesson's stored progress into its students' hashes and mark it full."""
        marker = self.keys(LESSON_LOADED, lesson_id)
        self._load(LessonProgress, rows, lambda pipe: pipe.set(marker, "1", ex=PROGRESS_TTL))

    def load_live_session(self, session_id: str, rows: Iterable[dict[str, Any]]) -> None:
        key = self.keys(LIVE, session_id)
        self._load(LiveClassEngagement, rows, lambda pipe: _mark_hash(pipe, key, LIVE_SESSION_TTL))

    def load_leaderboard(self, quiz_id: str, attempts: Iterable[dict[str, Any]]) -> None:
        """Merge every stored attempt of the quiz; attempts already counted are skipped."""
        marker = self.keys(LEADERBOARD_LOADED, quiz_id)
        self._load(QuizAttempt, attempts, lambda pipe: pipe.set(marker, "1", ex=LEADERBOARD_TTL))

    def _load(
        self,
        model: type[ActivityEvent],
        rows: Iterable[dict[str, Any]],
        mark: Callable[[Any], object],
    ) -> None:
        """Merge stored rows with the live script (rebuild mode), then mark the view full."""
        kind = next(name for name, known in MODEL_BY_TYPE.items() if known is model)
        batch = [
            [None, kind, script_fields(model.model_construct(**{"type": kind, **row}))]
            for row in rows
        ]
        pipe = self.client.pipeline(transaction=False)
        # Chunks keep each script call short: Redis runs nothing else meanwhile.
        for first in range(0, len(batch), REBUILD_CHUNK):
            chunk = json.dumps(batch[first : first + REBUILD_CHUNK])
            self._apply(keys=[], args=[self.prefix, 0, "", chunk, "0"], client=pipe)
        mark(pipe)
        pipe.execute()

    def load_notifications(self, user_id: str, items: Iterable[Notification]) -> None:
        key = self.keys(NOTIFICATIONS, user_id)
        pipe = self.client.pipeline(transaction=False)
        for item in items:
            pipe.zadd(key, {item.payload(): item.score()})
        pipe.zremrangebyrank(key, 0, -(NOTIFICATIONS_KEPT + 1))
        pipe.expire(key, NOTIFICATIONS_TTL)
        pipe.set(self.keys(NOTIFICATIONS_LOADED, user_id), "1", ex=NOTIFICATIONS_TTL)
        pipe.execute()

    def claim_due_buckets(self, due_before: int, claim_suffix: str) -> list[str]:
        """Claim buckets that closed before ``due_before``; returns all open claims."""
        claims: list[str] = self._claim(keys=[], args=[self.prefix, due_before, claim_suffix])
        return sorted(claims)

    def read_claim(self, claim: str) -> dict[str, str]:
        return cast(dict[str, str], self.client.hgetall(self.keys(CLAIM, claim)))

    def release_claim(self, claim: str) -> None:
        """Forget a claim whose counts are committed to PostgreSQL."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys(CLAIM, claim))
        pipe.srem(self.keys(CLAIMS), claim)
        pipe.execute()

    def ping(self) -> None:
        """Raise if Redis does not answer."""
        self.client.ping()

    def close(self) -> None:
        self.client.close()


def _erased_users() -> list[uuid.UUID]:
    from shared.repositories.postgres import get_postgres  # the system of record

    return get_postgres().erased_user_ids()


@lru_cache(maxsize=4)
def _realtime(url: str, prefix: str, bucket_seconds: int) -> RealtimeRepository:
    return RealtimeRepository(url, prefix, bucket_seconds, tombstones=_erased_users)


def get_realtime() -> RealtimeRepository:
    """The process-wide Redis repository for the current settings."""
    s = get_settings()
    return _realtime(s.redis_url, s.redis_prefix, s.rollup_bucket_seconds)
