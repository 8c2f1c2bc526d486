"""Every Redis key the real-time layer uses, defined once.

Each shape is a template under the prefix (``REDIS_PREFIX``). Python builds and
parses keys with ``RedisKeys``; the Lua scripts get the same shapes as
functions (``K.progress(student)``, ``K.parse(key)``) from ``lua_prelude()``,
generated from this table when the scripts are loaded, so the two can never
disagree. The layout is documented in docs/realtime.md.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

# Ids are UUIDs (validated by the models), so one key segment each; a counter
# bucket is ``{seconds}:{start}`` and a claim ``{seconds}:{start}:{suffix}``.
_SEGMENTS = {"bucket": 2, "claim": 3}
_LITERAL = re.compile(r"[a-z_:]*")


@dataclass(frozen=True)
class KeyShape:
    """One kind of key: its name (also the Lua function's) and its template."""

    name: str
    template: str
    parts: tuple[str, ...] = field(init=False)
    _pieces: tuple[tuple[str, str | None], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pieces = tuple((text, part) for text, part, _, _ in string.Formatter().parse(self.template))
        for text, _ in pieces:
            assert _LITERAL.fullmatch(text), f"{self.template}: literal text must be [a-z_:]"
        object.__setattr__(self, "_pieces", pieces)
        object.__setattr__(self, "parts", tuple(part for _, part in pieces if part))

    def build(self, prefix: str, *values: object) -> str:
        assert len(values) == len(self.parts), f"{self.name} takes {self.parts}"
        found = iter(str(value) for value in values)
        return prefix + "".join(text + (next(found) if part else "") for text, part in self._pieces)

    def regex(self) -> str:
        """What the key looks like after the prefix, one group per part (Python)."""
        return "".join(
            re.escape(text) + (_group(part, "[^:]+", ":") if part else "")
            for text, part in self._pieces
        )

    def lua_pattern(self) -> str:
        """The same as a Lua pattern (``:`` and letters need no escaping there)."""
        return "".join(
            text + (_group(part, "[^:]+", ":") if part else "") for text, part in self._pieces
        )

    def lua_function(self) -> str:
        args = ", ".join(self.parts)
        body = " .. ".join(
            item
            for text, part in self._pieces
            for item in ((f"'{text}'" if text else ""), part or "")
            if item
        )
        return f"function K.{self.name}({args}) return p .. {body} end"


def _group(part: str, segment: str, separator: str) -> str:
    return "(" + separator.join([segment] * _SEGMENTS.get(part, 1)) + ")"


# The key layout (docs/realtime.md, "Key layout").
SEEN = KeyShape("seen", "seen:{event_id}")  # the dedupe claim, holding the content digest
CONFLICTS = KeyShape("conflicts", "conflicts")  # second versions met, by where
PROGRESS = KeyShape("progress", "progress:{student}")  # {lesson}|{field}, _loaded
LESSON = KeyShape("lesson", "lesson:{lesson}")  # the lesson's students by last access
LESSON_LOADED = KeyShape("lesson_loaded", "loaded:lesson:{lesson}")
LEADERBOARD = KeyShape("leaderboard", "lb:{quiz}")  # zset of leaderboard members
STANDINGS = KeyShape("standings", "lbs:{quiz}")  # {student}|best, |at, |member, |attempts
ATTEMPTS = KeyShape("attempts", "lbatt:{quiz}")  # attempt ids already counted
LEADERBOARD_LOADED = KeyShape("leaderboard_loaded", "loaded:lb:{quiz}")
NOTIFICATIONS = KeyShape("notifications", "notif:{user}")  # payloads by created_at
NOTIFICATIONS_LOADED = KeyShape("notifications_loaded", "loaded:notif:{user}")
AUTHOR = KeyShape("author", "author:{post}")  # the post's author
PENDING = KeyShape("pending", "pending:{post}")  # notifications waiting for the author
LIVE = KeyShape("live", "live:{session}")  # class_id, {teacher}|{field}, _loaded
VERSION = KeyShape("version", "ver:{view}:{view_id}")  # a live view's version (ETag)
TOMBSTONES = KeyShape("tombstones", "erased")  # SHA-1 digests of erased users
TOMBSTONES_LOADED = KeyShape("tombstones_loaded", "erased:loaded")
BUCKET = KeyShape("bucket", "ctr:{bucket}")  # one open counter bucket
BUCKETS = KeyShape("buckets", "ctr:index")  # open buckets by end
CLAIM = KeyShape("claim", "ctr:claim:{claim}")  # a bucket claimed by a roll-up
CLAIMS = KeyShape("claims", "ctr:claims")  # open claims

SHAPES = (
    SEEN,
    CONFLICTS,
    PROGRESS,
    LESSON,
    LESSON_LOADED,
    LEADERBOARD,
    STANDINGS,
    ATTEMPTS,
    LEADERBOARD_LOADED,
    NOTIFICATIONS,
    NOTIFICATIONS_LOADED,
    AUTHOR,
    PENDING,
    LIVE,
    VERSION,
    TOMBSTONES,
    TOMBSTONES_LOADED,
    BUCKET,
    BUCKETS,
    CLAIM,
    CLAIMS,
)
# Keys that may name or hold a user's data (an erasure and an export look there).
USER_DATA = frozenset(
    {PROGRESS, LESSON, STANDINGS, LEADERBOARD, NOTIFICATIONS, NOTIFICATIONS_LOADED}
    | {AUTHOR, PENDING, LIVE, VERSION, BUCKET, CLAIM}
)


def bucket_id(seconds: int, start: int) -> str:
    """A counter bucket as ``ctr:index`` lists it and ``BUCKET`` names it."""
    return f"{seconds}:{start}"


class RedisKeys:
    """The keys under one prefix: ``keys(PROGRESS, student)``, ``keys.parse(key)``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._parsers = [(shape, re.compile(shape.regex())) for shape in SHAPES]

    def __call__(self, shape: KeyShape, *values: object) -> str:
        return shape.build(self.prefix, *values)

    def parse(self, key: str) -> tuple[KeyShape, tuple[str, ...]] | None:
        """The shape and parts of a key under the prefix; None for any other key."""
        if not key.startswith(self.prefix):
            return None
        name = key[len(self.prefix) :]
        for shape, pattern in self._parsers:
            if found := pattern.fullmatch(name):
                return shape, found.groups()
        return None


def lua_prelude() -> str:
    """The shapes as Lua: ``K.<name>(parts)`` builds a key, ``K.parse(key)`` reads one.

    Every script takes the prefix as ARGV[1]. ``K.parse`` returns the shape's
    name and its parts (nil and {} for a key of no known shape).
    """
    functions = "\n".join(shape.lua_function() for shape in SHAPES)
    patterns = ", ".join(f"{{'{s.name}', '^{s.lua_pattern()}$', {len(s.parts)}}}" for s in SHAPES)
    return f"""local p = ARGV[1]
local K = {{}}
{functions}
K.SHAPES = {{{patterns}}}
function K.parse(key)
  if string.sub(key, 1, #p) ~= p then return nil, {{}} end
  local name = string.sub(key, #p + 1)
  for _, shape in ipairs(K.SHAPES) do
    local found = {{string.match(name, shape[2])}}
    if found[1] then return shape[1], shape[3] > 0 and found or {{}} end
  end
  return nil, {{}}
end
"""
