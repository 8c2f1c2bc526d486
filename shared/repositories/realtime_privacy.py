"""Erasure and export in Redis (SPEC 9): the tombstone mirror, a user's traces.

``RealtimePrivacy`` is the part of ``RealtimeRepository`` that works on one
user across every key: its methods are the repository's. Which keys can hold
a user's data is ``USER_DATA`` (shared/repositories/redis_keys.py); the erase
script is in realtime_scripts.py. The cost of a full SCAN: docs/privacy.md.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, cast

import redis
from redis.commands.core import Script

from shared.repositories.realtime_model import INVERT_HEX, tombstone_digest
from shared.repositories.redis_keys import (
    AUTHOR,
    LIVE,
    NOTIFICATIONS,
    PROGRESS,
    STANDINGS,
    TOMBSTONES,
    TOMBSTONES_LOADED,
    USER_DATA,
    KeyShape,
    RedisKeys,
)

_Batch = list[tuple[str, KeyShape, tuple[str, ...]]]


class RealtimePrivacy:
    """Tombstones, erasure and export over the repository's client and keys."""

    client: redis.Redis
    prefix: str
    keys: RedisKeys
    _erase: Script

    def load_tombstones(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Fill the tombstone mirror from the system of record and mark it complete."""
        digests = [tombstone_digest(user) for user in user_ids]
        pipe = self.client.pipeline(transaction=True)
        if digests:
            pipe.sadd(self.keys(TOMBSTONES), *digests)
        pipe.set(self.keys(TOMBSTONES_LOADED), "1")
        pipe.execute()

    def add_tombstone(self, user_id: uuid.UUID) -> None:
        """Mirror one erasure: from now on the apply script drops the user's events."""
        self.client.sadd(self.keys(TOMBSTONES), tombstone_digest(user_id))

    def erased_among(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID] | None:
        """Which users the mirror lists as erased; None when the mirror is not loaded."""
        users = sorted(set(user_ids), key=str)
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self.keys(TOMBSTONES_LOADED))
        pipe.smismember(self.keys(TOMBSTONES), [tombstone_digest(u) for u in users] or ["-"])
        loaded, flags = pipe.execute()
        if not loaded:
            return None
        return {user for user, flag in zip(users, flags, strict=False) if flag}

    def _user_keys(self) -> Iterator[_Batch]:
        """Batches of every key that can hold a user's data, with its shape and parts."""
        batch: _Batch = []
        for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            parsed = self.keys.parse(key)
            if parsed is None or parsed[0] not in USER_DATA:
                continue  # dedupe claims, tombstones, markers, indexes: nobody's data
            batch.append((key, *parsed))
            if len(batch) == 500:
                yield batch
                batch = []
        if batch:
            yield batch

    def erase_user(self, user_id: uuid.UUID) -> int:
        """Remove every trace of the user under the prefix; returns the items removed.

        A full SCAN of the prefix (the id can be inside other users' keys: their
        notifications, leaderboards, live sessions, counter buckets), then one
        atomic script per key. Rare and admin-only; see docs/privacy.md for the cost.
        """
        user = str(user_id)
        inverted = user.translate(INVERT_HEX)
        # Counter fields keep counting a distinct student under a random name.
        token = secrets.token_hex(8)
        removed = 0
        for batch in self._user_keys():
            pipe = self.client.pipeline(transaction=False)
            for key, _, _ in batch:
                self._erase(keys=[key], args=[self.prefix, user, inverted, token], client=pipe)
            removed += sum(int(r) for r in pipe.execute())
        return removed

    def user_data(self, user_id: uuid.UUID) -> dict[str, Any]:
        """What Redis holds about the user, for an export (read-only, one SCAN).

        Grouped as stored: the progress hash, notification payloads, and per
        quiz and per session the user's own fields (``class_id`` with them).
        """
        user = str(user_id)
        found: dict[str, Any] = {
            "progress": {},
            "notifications": [],
            "leaderboards": {},
            "live_sessions": {},
            "posts": [],
        }
        for batch in self._user_keys():
            for key, shape, (key_id, *_) in batch:
                if shape is PROGRESS and key_id == user:
                    found["progress"] = self.client.hgetall(key)
                elif shape is NOTIFICATIONS and key_id == user:
                    found["notifications"] = self.client.zrevrange(key, 0, -1)
                elif shape in (STANDINGS, LIVE) and self.client.type(key) == "hash":
                    data = cast(dict[str, str], self.client.hgetall(key))
                    fields = {
                        f.split("|", 1)[1]: v for f, v in data.items() if f.startswith(user + "|")
                    }
                    if fields:
                        section = "leaderboards" if shape is STANDINGS else "live_sessions"
                        found[section][key_id] = fields
                elif shape is AUTHOR and self.client.get(key) == user:
                    found["posts"].append(key_id)
        return found
