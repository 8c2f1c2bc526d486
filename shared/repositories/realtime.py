"""Redis: the real-time state (progress bars, leaderboards, notifications,
live dashboards) and the roll-up counters, every key under one prefix.

Every update is applied by one Lua script per event that first claims the
event id (``SET NX``), so a retried request or a redelivered message changes
nothing twice; all of a request's events go in one pipelined round trip.
Merges are order-independent (min/max/union, best score with a deterministic
tie-break), so state never depends on arrival order. The key layout and
expiry policy are documented in docs/realtime.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

import redis

from shared import telemetry
from shared.models.events import (
    MODEL_BY_TYPE,
    ActivityEvent,
    ForumActivity,
    LessonProgress,
    LiveClassEngagement,
    QuizAttempt,
)
from shared.settings import get_settings

log = logging.getLogger(__name__)

# Expiry policy (seconds). Dedupe must outlive any redelivery: Azure Storage
# queue messages live at most 7 days by default.
DEDUPE_TTL = 7 * 24 * 3600
PROGRESS_TTL = 30 * 24 * 3600
LEADERBOARD_TTL = 30 * 24 * 3600
NOTIFICATIONS_TTL = 30 * 24 * 3600
LIVE_SESSION_TTL = 2 * 24 * 3600
POST_AUTHOR_TTL = 90 * 24 * 3600
PENDING_NOTIFICATION_TTL = 7 * 24 * 3600
NOTIFICATIONS_KEPT = 500
REBUILD_CHUNK = 1000  # rows merged per script call when a view is rebuilt

# Largest epoch microsecond we invert for leaderboard tie-breaks (year 2286).
_TS_CEILING = 9_999_999_999_999_999

# Fixed-width UTC timestamps compare as strings in Lua exactly as in time.
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def redis_ts(moment: datetime) -> str:
    """A timestamp as stored in Redis: fixed width, so string order is time order."""
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def parse_redis_ts(text: str | bytes | None) -> datetime | None:
    if text in (None, b"", ""):
        return None
    raw = text.decode() if isinstance(text, bytes) else text
    return datetime.strptime(raw, _TS_FORMAT).replace(tzinfo=UTC)


def leaderboard_member(student_id: str, submitted_at: datetime) -> str:
    """ZSET member ordering ties: earlier submission first, then lower student id.

    ZREVRANGE returns equal scores in reverse lexical order, so both parts are
    inverted: an earlier time and a smaller id give a larger member.
    """
    micros = int(submitted_at.timestamp() * 1_000_000)
    inverted_id = student_id.translate(_INVERT_HEX)
    return f"{_TS_CEILING - micros:016d}|{inverted_id}"


_INVERT_HEX = str.maketrans("0123456789abcdef", "fedcba9876543210")
# A student's fields for one lesson in their ``progress`` hash (``{lesson}|{field}``).
LESSON_FIELDS = (
    "started_at",
    "completed_at",
    "progress_percent",
    "video_watch_time",
    "sections_read",
    "last_accessed_at",
)
# A student's fields in a quiz's ``lbs`` hash that make their leaderboard entry.
_POSITION = ("member", "attempts", "best")


def student_from_member(member: str) -> str:
    return member.split("|", 1)[1].translate(_INVERT_HEX)


# One script call applies a request's events, each once: dedupe, then the view
# and counter updates of its type. ARGV: prefix, dedupe ttl, bucket, events
# (JSON list of [event_id, type, fields]), live ("1"; "0" for a rebuild from
# PostgreSQL: merge the views only, with no dedupe claim and no counting).
# Keys are built inside the script from the prefix, which is fine on a single
# (non-clustered) Redis; see docs/realtime.md.
_APPLY = r"""
local p = ARGV[1]
local dedupe_ttl = tonumber(ARGV[2])
local bucket = ARGV[3]
local events = cjson.decode(ARGV[4])
local live = ARGV[5] == '1'
-- Erasure tombstones (SPEC 9): an event naming an erased user changes nothing.
-- The set holds SHA-1 digests, so no raw user id stays in Redis after an erasure;
-- -1 asks the caller to load the set from PostgreSQL first (Redis was flushed).
if live and redis.call('EXISTS', p .. 'erased:loaded') == 0 then return {-1, {}} end
local conflicts = {}

local function apply(event_id, kind, f)
local ckey = nil
for _, u in ipairs(f.users) do
  if redis.call('SISMEMBER', p .. 'erased', redis.sha1hex(u)) == 1 then return 0 end
end
if event_id ~= '' then
  -- The claim holds the content's digest: a second, different version of an
  -- event_id is a conflict (SPEC 13), counted and dropped; the first is kept.
  local seen = p .. 'seen:' .. event_id
  if not redis.call('SET', seen, f.digest, 'NX', 'EX', dedupe_ttl) then
    local first = redis.call('GET', seen)
    if first and first ~= f.digest then
      redis.call('HINCRBY', p .. 'conflicts', 'realtime', 1)
      conflicts[#conflicts + 1] = event_id
    end
    return 0
  end
  ckey = p .. 'ctr:' .. bucket
  redis.call('HINCRBY', ckey, 'events|' .. kind, 1)
  redis.call('ZADD', p .. 'ctr:index', f.bucket_end, bucket)
end
local function count(field, by)
  if ckey then redis.call('HINCRBY', ckey, field, by) end
end

local function keep_min(key, field, value)
  if value == nil or value == cjson.null then return end
  local cur = redis.call('HGET', key, field)
  if not cur or value < cur then redis.call('HSET', key, field, value) end
end
local function keep_max(key, field, value)
  if value == nil or value == cjson.null then return end
  local cur = redis.call('HGET', key, field)
  if not cur or value > cur then redis.call('HSET', key, field, value) end
end
local function keep_max_number(key, field, value)
  local cur = redis.call('HGET', key, field)
  if not cur or tonumber(value) > tonumber(cur) then redis.call('HSET', key, field, value) end
end
local function union(key, field, items)
  local cur = redis.call('HGET', key, field)
  local seen, out = {}, {}
  for _, list in ipairs({cur and cjson.decode(cur) or {}, items}) do
    for _, item in ipairs(list) do
      if not seen[item] then seen[item] = true; out[#out + 1] = item end
    end
  end
  table.sort(out)
  if #out == 0 then
    redis.call('HSET', key, field, '[]')
  else
    redis.call('HSET', key, field, cjson.encode(out))
  end
end
-- A view's version (its ETag): starts from the server clock in microseconds,
-- so a version never repeats across a flush, and grows with every change.
-- A rebuild from PostgreSQL is the same view again, not a change: no bump.
local function bump(view, ttl)
  if not live then return end
  local vkey = p .. 'ver:' .. view
  if redis.call('EXISTS', vkey) == 0 then
    local now = redis.call('TIME')
    redis.call('SET', vkey, now[1] .. string.format('%06d', tonumber(now[2])))
  end
  redis.call('INCR', vkey)
  redis.call('EXPIRE', vkey, ttl)
end
local function notify(recipient, payload, score)
  local nkey = p .. 'notif:' .. recipient
  redis.call('ZADD', nkey, score, payload)
  redis.call('ZREMRANGEBYRANK', nkey, 0, -(tonumber(f.keep) + 1))
  redis.call('EXPIRE', nkey, tonumber(f.notif_ttl))
  bump('notif:' .. recipient, tonumber(f.notif_ttl))
end

if kind == 'lesson_progress' then
  local key = p .. 'progress:' .. f.student_id
  local l = f.lesson_id .. '|'
  keep_min(key, l .. 'started_at', f.started_at)
  keep_min(key, l .. 'completed_at', f.completed_at)
  keep_max_number(key, l .. 'progress_percent', f.progress_percent)
  keep_max_number(key, l .. 'video_watch_time', f.video_watch_time)
  union(key, l .. 'sections_read', f.sections_read)
  keep_max(key, l .. 'last_accessed_at', f.last_accessed_at)
  redis.call('EXPIRE', key, tonumber(f.ttl))
  -- The lesson's students, most recently active last (the lesson's live view).
  local lkey = p .. 'lesson:' .. f.lesson_id
  redis.call('ZADD', lkey, 'GT', tonumber(f.accessed_epoch), f.student_id)
  redis.call('EXPIRE', lkey, tonumber(f.ttl))
  bump('progress:' .. f.student_id, tonumber(f.ttl))
  bump('lesson:' .. f.lesson_id, tonumber(f.ttl))
  if ckey then redis.call('HSETNX', ckey, 'las|' .. f.lesson_id .. '|' .. f.student_id, 1) end
elseif kind == 'quiz_attempt' then
  local hkey = p .. 'lbs:' .. f.quiz_id
  local zkey = p .. 'lb:' .. f.quiz_id
  local akey = p .. 'lbatt:' .. f.quiz_id
  local s = f.student_id .. '|'
  if redis.call('SADD', akey, f.attempt_id) == 1 then
    redis.call('HINCRBY', hkey, s .. 'attempts', 1)
    count('quiz_attempts|' .. f.quiz_id, 1)
    local best = redis.call('HGET', hkey, s .. 'best')
    local at = redis.call('HGET', hkey, s .. 'at')
    local score = tonumber(f.score)
    if not best or score > tonumber(best) or (score == tonumber(best) and f.submitted_at < at) then
      local old = redis.call('HGET', hkey, s .. 'member')
      if old then redis.call('ZREM', zkey, old) end
      redis.call('HSET', hkey, s .. 'best', f.score, s .. 'at', f.submitted_at,
                 s .. 'member', f.member)
      redis.call('ZADD', zkey, f.score, f.member)
    end
    bump('lb:' .. f.quiz_id, tonumber(f.ttl))
  end
  for _, k in ipairs({hkey, zkey, akey}) do redis.call('EXPIRE', k, tonumber(f.ttl)) end
elseif kind == 'forum_activity' then
  count('forum_thread_actions|' .. f.thread_id, 1)
  if f.action_type ~= 'like' then
    redis.call('SET', p .. 'author:' .. f.post_id, f.user_id, 'EX', tonumber(f.author_ttl))
    local pkey = p .. 'pending:' .. f.post_id
    for _, item in ipairs(redis.call('LRANGE', pkey, 0, -1)) do
      local n = cjson.decode(item)
      if n.actor ~= f.user_id then notify(f.user_id, n.payload, n.score) end
    end
    redis.call('DEL', pkey)
  end
  if f.target then
    local author = redis.call('GET', p .. 'author:' .. f.target)
    if author then
      if author ~= f.user_id then notify(author, f.payload, f.score) end
    else
      local pkey = p .. 'pending:' .. f.target
      local item = {actor = f.user_id, payload = f.payload, score = f.score}
      redis.call('RPUSH', pkey, cjson.encode(item))
      redis.call('EXPIRE', pkey, tonumber(f.pending_ttl))
    end
  end
elseif kind == 'live_class_engagement' then
  local key = p .. 'live:' .. f.session_id
  local t = f.teacher_id .. '|'
  -- class_id is the latest snapshot's, by (duration_seconds, event_id), as in
  -- PostgreSQL's LATEST merge (MergedTable): whatever the arrival order.
  local rank = string.format('%010d', tonumber(f.duration_seconds)) .. '|' .. f.event_id
  local held = redis.call('HGET', key, t .. 'class_rank')
  if not held or rank > held then
    redis.call('HSET', key, t .. 'class_id', f.class_id, t .. 'class_rank', rank)
  end
  keep_min(key, t .. 'joined_at', f.joined_at)
  keep_max(key, t .. 'left_at', f.left_at)
  keep_max_number(key, t .. 'duration_seconds', f.duration_seconds)
  union(key, t .. 'polls_launched', f.polls_launched)
  keep_max_number(key, t .. 'messages_sent', f.messages_sent)
  redis.call('EXPIRE', key, tonumber(f.ttl))
  bump('live:' .. f.session_id, tonumber(f.ttl))
end
return 1
end

local applied = 0
for _, e in ipairs(events) do
  applied = applied + apply(live and e[1] or '', e[2], e[3])
end
return {applied, conflicts}
"""


# Atomically move every due counter bucket to a claim key of its own. Late
# increments to a claimed bucket start a fresh bucket key, rolled up later; a
# claim key is never written again, so every reader of it sees the same data.
# ARGV: prefix, due-before epoch, claim suffix. Returns every open claim,
# including ones a crashed roll-up left behind.
_CLAIM = r"""
local p = ARGV[1]
local index = p .. 'ctr:index'
for _, bucket in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', ARGV[2])) do
  redis.call('ZREM', index, bucket)
  local key = p .. 'ctr:' .. bucket
  if redis.call('EXISTS', key) == 1 then
    local claim = bucket .. ':' .. ARGV[3]
    redis.call('RENAME', key, p .. 'ctr:claim:' .. claim)
    redis.call('SADD', p .. 'ctr:claims', claim)
  end
end
return redis.call('SMEMBERS', p .. 'ctr:claims')
"""


# Erase one user from one key, atomically with respect to the apply script.
# KEYS[1]: the key; ARGV: prefix, user id, inverted user id (leaderboard
# members), a random token (renamed counter fields). Returns items removed.
_ERASE = r"""
local p, user, inverted, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = KEYS[1]
local name = string.sub(key, #p + 1)
local family = string.match(name, '^[^:]*')
if name == 'progress:' .. user or name == 'notif:' .. user or name == 'loaded:notif:' .. user
    or name == 'ver:progress:' .. user or name == 'ver:notif:' .. user then
  return redis.call('DEL', key)
end
local kind = redis.call('TYPE', key).ok
local removed = 0
local s = user .. '|'
if family == 'lbs' and kind == 'hash' then
  local member = redis.call('HGET', key, s .. 'member')
  if member then
    removed = removed + redis.call('ZREM', p .. 'lb:' .. string.sub(name, 5), member)
  end
  removed = removed
    + redis.call('HDEL', key, s .. 'best', s .. 'at', s .. 'member', s .. 'attempts')
elseif family == 'lb' and kind == 'zset' then
  -- Normally gone with the lbs entry; this catches a member without one.
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(member, -#inverted - 1) == '|' .. inverted then
      removed = removed + redis.call('ZREM', key, member)
    end
  end
elseif family == 'notif' and kind == 'zset' then
  local needle = '"actor_id":"' .. user .. '"'
  for _, item in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.find(item, needle, 1, true) then removed = removed + redis.call('ZREM', key, item) end
  end
elseif family == 'pending' and kind == 'list' then
  for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if string.find(item, user, 1, true) then
      removed = removed + redis.call('LREM', key, 0, item)
    end
  end
elseif family == 'author' and kind == 'string' then
  if redis.call('GET', key) == user then removed = redis.call('DEL', key) end
elseif family == 'live' and kind == 'hash' then
  removed = redis.call('HDEL', key, s .. 'joined_at', s .. 'left_at', s .. 'duration_seconds',
                       s .. 'polls_launched', s .. 'messages_sent', s .. 'class_id',
                       s .. 'class_rank')
  if removed > 0 then
    local others = false
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if string.find(field, '|', 1, true) then others = true; break end
    end
    if not others then redis.call('DEL', key) end
  end
elseif family == 'lesson' and kind == 'zset' then
  removed = redis.call('ZREM', key, user)
elseif family == 'ctr' and kind == 'hash' then
  -- A distinct active student stays counted, under a name that identifies nobody.
  local suffix = '|' .. user
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 4) == 'las|' and string.sub(field, -#suffix) == suffix then
      local value = redis.call('HGET', key, field)
      redis.call('HDEL', key, field)
      redis.call('HSET', key, string.sub(field, 1, #field - #user) .. 'erased-' .. token, value)
      removed = removed + 1
    end
  end
end
-- A view that lost the user changed: its version moves, so no client keeps it by ETag.
local versioned = {lb = true, notif = true, live = true, lesson = true}
local view = nil
if versioned[family] then
  view = name
elseif family == 'lbs' then
  view = 'lb:' .. string.sub(name, 5)
end
if removed > 0 and view and redis.call('EXISTS', p .. 'ver:' .. view) == 1 then
  redis.call('INCR', p .. 'ver:' .. view)
end
return removed
"""


class TombstonesUnavailable(redis.RedisError):
    """The tombstone mirror is missing and its source cannot be read."""


@dataclass(frozen=True)
class Notification:
    """A reply to or like of someone's post, as stored and as answered."""

    type: str
    post_id: str
    thread_id: str
    actor_id: str
    created_at: datetime
    event_id: str

    def payload(self) -> str:
        return json.dumps(
            {
                "type": self.type,
                "post_id": self.post_id,
                "thread_id": self.thread_id,
                "actor_id": self.actor_id,
                "created_at": redis_ts(self.created_at),
                "event_id": self.event_id,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    def score(self) -> float:
        return self.created_at.timestamp()

    @classmethod
    def from_payload(cls, raw: str | bytes) -> Notification:
        data = json.loads(raw)
        created = parse_redis_ts(data.pop("created_at"))
        assert created is not None
        return cls(created_at=created, **data)

    @classmethod
    def for_event(cls, event: ForumActivity) -> Notification | None:
        """The notification a reply or like gives the target post's author."""
        if event.action_type == "post":
            return None
        target = event.parent_post_id if event.action_type == "reply" else event.post_id
        return cls(
            type=event.action_type,
            post_id=str(target),
            thread_id=str(event.thread_id),
            actor_id=str(event.user_id),
            created_at=event.created_at,
            event_id=str(event.event_id),
        )


def _fields(event: ActivityEvent) -> dict[str, Any]:
    """The event's fields as the script reads them (times fixed-width, numbers as repr)."""
    fields = {k: v for k, v in _all_fields(event).items() if v is not None}
    fields["users"] = [str(user) for user in event.user_ids]
    return fields


def tombstone_digest(user_id: uuid.UUID | str) -> str:
    """How the tombstone set names an erased user (the script's ``redis.sha1hex``)."""
    return hashlib.sha1(str(user_id).encode(), usedforsecurity=False).hexdigest()


def _all_fields(event: ActivityEvent) -> dict[str, Any]:
    if isinstance(event, LessonProgress):
        return {
            "student_id": str(event.student_id),
            "lesson_id": str(event.lesson_id),
            "started_at": redis_ts(event.started_at),
            "completed_at": redis_ts(event.completed_at) if event.completed_at else None,
            "progress_percent": repr(float(event.progress_percent)),
            "video_watch_time": str(event.video_watch_time),
            "sections_read": list(event.sections_read),
            "last_accessed_at": redis_ts(event.last_accessed_at),
            "accessed_epoch": event.last_accessed_at.timestamp(),
            "ttl": PROGRESS_TTL,
        }
    if isinstance(event, QuizAttempt):
        return {
            "student_id": str(event.student_id),
            "quiz_id": str(event.quiz_id),
            "attempt_id": str(event.attempt_id),
            "score": repr(float(event.score)),
            "submitted_at": redis_ts(event.submitted_at),
            "member": leaderboard_member(str(event.student_id), event.submitted_at),
            "ttl": LEADERBOARD_TTL,
        }
    if isinstance(event, ForumActivity):
        notification = Notification.for_event(event)
        return {
            "user_id": str(event.user_id),
            "post_id": str(event.post_id),
            "thread_id": str(event.thread_id),
            "action_type": event.action_type,
            "target": notification.post_id if notification else None,
            "payload": notification.payload() if notification else None,
            "score": notification.score() if notification else None,
            "keep": NOTIFICATIONS_KEPT,
            "notif_ttl": NOTIFICATIONS_TTL,
            "author_ttl": POST_AUTHOR_TTL,
            "pending_ttl": PENDING_NOTIFICATION_TTL,
        }
    if isinstance(event, LiveClassEngagement):
        return {
            "teacher_id": str(event.teacher_id),
            "class_id": str(event.class_id),
            "event_id": str(event.event_id),
            "session_id": str(event.session_id),
            "joined_at": redis_ts(event.joined_at),
            "left_at": redis_ts(event.left_at) if event.left_at else None,
            "duration_seconds": str(event.duration_seconds),
            "polls_launched": sorted(str(p) for p in event.polls_launched),
            "messages_sent": str(event.messages_sent),
            "ttl": LIVE_SESSION_TTL,
        }
    return {}  # content_activity and feedback only count


def _mark_hash(pipe: Any, key: str, ttl: int) -> None:
    """Mark a one-hash view as fully held (the marker expires with the data)."""
    pipe.hset(key, "_loaded", "1")
    pipe.expire(key, ttl)


def bucket_start(received_at: datetime, bucket_seconds: int) -> int:
    epoch = int(received_at.timestamp())
    return epoch - epoch % bucket_seconds


class RealtimeRepository:
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
        self._apply = self.client.register_script(_APPLY)
        self._claim = self.client.register_script(_CLAIM)
        self._erase = self.client.register_script(_ERASE)

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    # --- writes -----------------------------------------------------------------

    def apply_events(self, events: Sequence[ActivityEvent], received_at: datetime) -> int:
        """Apply events once each, in one round trip; returns how many were new."""
        if not events:
            return 0
        start = bucket_start(received_at, self.bucket_seconds)
        bucket = f"{self.bucket_seconds}:{start}"
        end = start + self.bucket_seconds
        batch = [
            [
                str(event.event_id),
                event.event_type,
                _fields(event) | {"bucket_end": end, "digest": event.content_digest},
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

    # --- erasure tombstones and per-user data (SPEC 9) -------------------------------

    def load_tombstones(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Fill the tombstone mirror from the system of record and mark it complete."""
        digests = [tombstone_digest(user) for user in user_ids]
        pipe = self.client.pipeline(transaction=True)
        if digests:
            pipe.sadd(self.key("erased"), *digests)
        pipe.set(self.key("erased", "loaded"), "1")
        pipe.execute()

    def add_tombstone(self, user_id: uuid.UUID) -> None:
        """Mirror one erasure: from now on the apply script drops the user's events."""
        self.client.sadd(self.key("erased"), tombstone_digest(user_id))

    def first_versions(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The content digest of each event already applied (its first version), by id."""
        if not event_ids:
            return {}
        found = self.client.mget([self.key("seen", event_id) for event_id in event_ids])
        # "1": a claim written before digests were kept; it cannot tell versions apart.
        return {
            event_id: str(digest)
            for event_id, digest in zip(event_ids, found, strict=True)
            if digest not in (None, "1")
        }

    def conflicts(self) -> dict[str, int]:
        """Second versions the real-time store met and dropped, by where they were met."""
        counts = cast(dict[str, str], self.client.hgetall(self.key("conflicts")))
        return {where: int(count) for where, count in counts.items()}

    def erased_among(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID] | None:
        """Which users the mirror lists as erased; None when the mirror is not loaded."""
        users = sorted(set(user_ids), key=str)
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self.key("erased", "loaded"))
        pipe.smismember(self.key("erased"), [tombstone_digest(u) for u in users] or ["-"])
        loaded, flags = pipe.execute()
        if not loaded:
            return None
        return {user for user, flag in zip(users, flags, strict=False) if flag}

    def _user_keys(self) -> Iterator[list[str]]:
        """Batches of every key that can hold a user's data (dedupe claims cannot)."""
        seen = self.prefix + "seen:"
        batch: list[str] = []
        for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
            if key.startswith(seen) or key in (self.key("erased"), self.key("erased", "loaded")):
                continue
            batch.append(key)
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
        inverted = user.translate(_INVERT_HEX)
        # Counter fields keep counting a distinct student under a random name.
        token = secrets.token_hex(8)
        removed = 0
        for keys in self._user_keys():
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
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
        for keys in self._user_keys():
            for key in keys:
                name = key[len(self.prefix) :]
                family, _, rest = name.partition(":")
                if name == f"progress:{user}":
                    found["progress"] = self.client.hgetall(key)
                elif name == f"notif:{user}":
                    found["notifications"] = self.client.zrevrange(key, 0, -1)
                elif family in ("lbs", "live") and self.client.type(key) == "hash":
                    data = cast(dict[str, str], self.client.hgetall(key))
                    fields = {
                        f.split("|", 1)[1]: v for f, v in data.items() if f.startswith(user + "|")
                    }
                    if fields:
                        section = "leaderboards" if family == "lbs" else "live_sessions"
                        found[section][rest] = fields
                elif family == "author" and self.client.get(key) == user:
                    found["posts"].append(rest)
        return found

    # --- reads --------------------------------------------------------------------

    def progress(self, student_id: str) -> dict[str, str] | None:
        """The student's progress hash, or None when Redis doesn't hold it fully."""
        key = self.key("progress", student_id)
        data = cast(dict[str, str], self.client.hgetall(key))
        return data if data.get("_loaded") else None

    def live_session(self, session_id: str) -> dict[str, str] | None:
        data = cast(dict[str, str], self.client.hgetall(self.key("live", session_id)))
        return data if data.get("_loaded") else None

    def lesson_progress(
        self, lesson_id: str, limit: int
    ) -> list[tuple[str, dict[str, str]]] | None:
        """The lesson's most recently active students with their fields for it.

        None when Redis does not hold the lesson fully: never rebuilt since a
        flush, or a student's progress expired while the lesson stayed active.
        """
        if not self.client.exists(self.key("loaded", "lesson", lesson_id)):
            return None
        students = cast(
            list[str], self.client.zrevrange(self.key("lesson", lesson_id), 0, limit - 1)
        )
        names = [f"{lesson_id}|{name}" for name in LESSON_FIELDS]
        pipe = self.client.pipeline(transaction=False)
        for student in students:
            pipe.hmget(self.key("progress", student), names)
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
        key = self.key("ver", view, view_id)
        found = self.client.get(key)
        if found is None:
            self.client.set(key, str(time.time_ns() // 1000), nx=True, ex=PROGRESS_TTL)
            found = self.client.get(key)
        return str(found)

    def leaderboard(self, quiz_id: str, limit: int) -> list[dict[str, Any]] | None:
        """Top entries (student, best score, time of that best, attempts)."""
        if not self.client.exists(self.key("loaded", "lb", quiz_id)):
            return None
        top = cast(
            list[tuple[str, float]],
            self.client.zrevrange(self.key("lb", quiz_id), 0, limit - 1, withscores=True),
        )
        students = [student_from_member(member) for member, _ in top]
        fields = [f"{s}|{name}" for s in students for name in ("attempts", "at")]
        values = self.client.hmget(self.key("lbs", quiz_id), fields) if fields else []
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
        pipe.exists(self.key("loaded", "lb", quiz_id))
        pipe.hmget(self.key("lbs", quiz_id), [f"{student_id}|{name}" for name in _POSITION])
        loaded, (member, attempts, best) = pipe.execute()
        if not loaded:
            return None
        if member is None:
            return {}
        rank = self.client.zrevrank(self.key("lb", quiz_id), member)
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
            self.key("live", session_id), ["_loaded", f"{teacher_id}|joined_at"]
        )
        return None if not loaded else joined is not None

    def notifications(self, user_id: str, limit: int) -> list[Notification] | None:
        if not self.client.exists(self.key("loaded", "notif", user_id)):
            return None
        raw = cast(list[str], self.client.zrevrange(self.key("notif", user_id), 0, limit - 1))
        return [Notification.from_payload(item) for item in raw]

    # --- rebuild from PostgreSQL ------------------------------------------------------

    def load_progress(self, student_id: str, rows: Iterable[dict[str, Any]]) -> None:
        """Merge PostgreSQL's state into Redis (the merge is idempotent) and mark it full."""
        key = self.key("progress", student_id)
        self._load(LessonProgress, rows, lambda pipe: _mark_hash(pipe, key, PROGRESS_TTL))

    def load_lesson(self, lesson_id: str, rows: Iterable[dict[str, Any]]) -> None:
        """Merge the lesson's stored progress into its students' hashes and mark it full."""
        marker = self.key("loaded", "lesson", lesson_id)
        self._load(LessonProgress, rows, lambda pipe: pipe.set(marker, "1", ex=PROGRESS_TTL))

    def load_live_session(self, session_id: str, rows: Iterable[dict[str, Any]]) -> None:
        key = self.key("live", session_id)
        self._load(LiveClassEngagement, rows, lambda pipe: _mark_hash(pipe, key, LIVE_SESSION_TTL))

    def load_leaderboard(self, quiz_id: str, attempts: Iterable[dict[str, Any]]) -> None:
        """Merge every stored attempt of the quiz; attempts already counted are skipped."""
        marker = self.key("loaded", "lb", quiz_id)
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
            [None, kind, _fields(model.model_construct(**{"type": kind, **row}))] for row in rows
        ]
        pipe = self.client.pipeline(transaction=False)
        # Chunks keep each script call short: Redis runs nothing else meanwhile.
        for first in range(0, len(batch), REBUILD_CHUNK):
            chunk = json.dumps(batch[first : first + REBUILD_CHUNK])
            self._apply(keys=[], args=[self.prefix, 0, "", chunk, "0"], client=pipe)
        mark(pipe)
        pipe.execute()

    def load_notifications(self, user_id: str, items: Iterable[Notification]) -> None:
        key = self.key("notif", user_id)
        pipe = self.client.pipeline(transaction=False)
        for item in items:
            pipe.zadd(key, {item.payload(): item.score()})
        pipe.zremrangebyrank(key, 0, -(NOTIFICATIONS_KEPT + 1))
        pipe.expire(key, NOTIFICATIONS_TTL)
        pipe.set(self.key("loaded", "notif", user_id), "1", ex=NOTIFICATIONS_TTL)
        pipe.execute()

    def claim_due_buckets(self, due_before: int, claim_suffix: str) -> list[str]:
        """Claim buckets that closed before ``due_before``; returns all open claims."""
        claims: list[str] = self._claim(keys=[], args=[self.prefix, due_before, claim_suffix])
        return sorted(claims)

    def read_claim(self, claim: str) -> dict[str, str]:
        return cast(dict[str, str], self.client.hgetall(self.key("ctr", "claim", claim)))

    def release_claim(self, claim: str) -> None:
        """Forget a claim whose counts are committed to PostgreSQL."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.key("ctr", "claim", claim))
        pipe.srem(self.key("ctr", "claims"), claim)
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
