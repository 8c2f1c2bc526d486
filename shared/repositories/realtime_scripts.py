"""The real-time layer's Lua scripts: apply events, claim counter buckets, erase a user.

Each script starts with ``lua_prelude()`` (shared/repositories/redis_keys.py):
every key a script touches is built or parsed by the ``K`` functions generated
from the one key table, never by hand. Every script takes the prefix as
ARGV[1]. Keys are built inside the scripts, which is fine on a single
(non-clustered) Redis; see docs/realtime.md.
"""

from __future__ import annotations

from shared.repositories.redis_keys import lua_prelude

# One script call applies a request's events, each once: dedupe, then the view
# and counter updates of its type. ARGV: prefix, dedupe ttl, bucket, events
# (JSON list of [event_id, type, fields]), live ("1"; "0" for a rebuild from
# PostgreSQL: merge the views only, with no dedupe claim and no counting).
APPLY_BODY = r"""
local dedupe_ttl = tonumber(ARGV[2])
local bucket = ARGV[3]
local events = cjson.decode(ARGV[4])
local live = ARGV[5] == '1'
-- Erasure tombstones (SPEC 9): an event naming an erased user changes nothing.
-- The set holds SHA-1 digests, so no raw user id stays in Redis after an erasure;
-- -1 asks the caller to load the set from PostgreSQL first (Redis was flushed).
if live and redis.call('EXISTS', K.tombstones_loaded()) == 0 then return {-1, {}} end
local conflicts = {}
local bucket_end = nil  -- set once an event is counted in the bucket

-- Order-independent merges of one hash field: the value to store, given the
-- one stored (false when none), or nil to leave it.
local function keep_min(cur, value)
  if value == nil or value == cjson.null then return nil end
  if not cur or value < cur then return value end
end
local function keep_max(cur, value)
  if value == nil or value == cjson.null then return nil end
  if not cur or value > cur then return value end
end
local function keep_max_number(cur, value)
  if not cur or tonumber(value) > tonumber(cur) then return value end
end
local function union(cur, items)
  local seen, out = {}, {}
  for _, list in ipairs({cur and cjson.decode(cur) or {}, items}) do
    for _, item in ipairs(list) do
      if not seen[item] then seen[item] = true; out[#out + 1] = item end
    end
  end
  table.sort(out)
  if #out == 0 then return '[]' end
  return cjson.encode(out)
end
-- A view's version (its ETag): starts from the server clock in microseconds,
-- so a version never repeats across a flush, and grows with every change.
-- A rebuild from PostgreSQL is the same view again, not a change: no bump.
-- Once per view and call: the script is atomic, so one bump covers every change it makes.
local bumped = {}
local function bump(view, id, ttl)
  if not live then return end
  local vkey = K.version(view, id)
  if bumped[vkey] then return end
  bumped[vkey] = true
  if redis.call('EXISTS', vkey) == 0 then
    local now = redis.call('TIME')
    redis.call('SET', vkey, now[1] .. string.format('%06d', tonumber(now[2])))
  end
  redis.call('INCR', vkey)
  redis.call('EXPIRE', vkey, ttl)
end
-- Merge an event's fields into the owner's ``{owner}|{field}`` fields of a hash,
-- by rule: one read of them all, one write of those that change.
local function merge_fields(key, owner, f, rules)
  local names = {}
  for i, rule in ipairs(rules) do names[i] = owner .. '|' .. rule[1] end
  local current = redis.call('HMGET', key, unpack(names))
  local changes = {}
  for i, rule in ipairs(rules) do
    local value = rule[2](current[i], f[rule[1]])
    if value ~= nil then
      changes[#changes + 1] = names[i]
      changes[#changes + 1] = value
    end
  end
  if #changes > 0 then redis.call('HSET', key, unpack(changes)) end
end
local progress_rules = {{'started_at', keep_min}, {'completed_at', keep_min},
  {'progress_percent', keep_max_number}, {'video_watch_time', keep_max_number},
  {'sections_read', union}, {'last_accessed_at', keep_max}}
local live_rules = {{'joined_at', keep_min}, {'left_at', keep_max},
  {'duration_seconds', keep_max_number}, {'polls_launched', union},
  {'messages_sent', keep_max_number}}
-- A counter of the event's bucket (none in a rebuild).
local function count(ckey, field)
  if ckey then redis.call('HINCRBY', ckey, field, 1) end
end

local function apply_progress(f, ckey)
  local key = K.progress(f.student_id)
  merge_fields(key, f.lesson_id, f, progress_rules)
  redis.call('EXPIRE', key, tonumber(f.ttl))
  -- The lesson's students, most recently active last (the lesson's live view).
  local lkey = K.lesson(f.lesson_id)
  redis.call('ZADD', lkey, 'GT', tonumber(f.accessed_epoch), f.student_id)
  redis.call('EXPIRE', lkey, tonumber(f.ttl))
  bump('progress', f.student_id, tonumber(f.ttl))
  bump('lesson', f.lesson_id, tonumber(f.ttl))
  if ckey then redis.call('HSETNX', ckey, 'las|' .. f.lesson_id .. '|' .. f.student_id, 1) end
end

local function apply_quiz(f, ckey)
  local hkey = K.standings(f.quiz_id)
  local zkey = K.leaderboard(f.quiz_id)
  local akey = K.attempts(f.quiz_id)
  local s = f.student_id .. '|'
  if redis.call('SADD', akey, f.attempt_id) == 1 then
    redis.call('HINCRBY', hkey, s .. 'attempts', 1)
    count(ckey, 'quiz_attempts|' .. f.quiz_id)
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
    bump('lb', f.quiz_id, tonumber(f.ttl))
  end
  for _, k in ipairs({hkey, zkey, akey}) do redis.call('EXPIRE', k, tonumber(f.ttl)) end
end

local function notify(f, recipient, payload, score)
  local nkey = K.notifications(recipient)
  redis.call('ZADD', nkey, score, payload)
  redis.call('ZREMRANGEBYRANK', nkey, 0, -(tonumber(f.keep) + 1))
  redis.call('EXPIRE', nkey, tonumber(f.notif_ttl))
  bump('notif', recipient, tonumber(f.notif_ttl))
end

local function apply_forum(f, ckey)
  count(ckey, 'forum_thread_actions|' .. f.thread_id)
  if f.action_type ~= 'like' then
    redis.call('SET', K.author(f.post_id), f.user_id, 'EX', tonumber(f.author_ttl))
    local pkey = K.pending(f.post_id)
    for _, item in ipairs(redis.call('LRANGE', pkey, 0, -1)) do
      local n = cjson.decode(item)
      if n.actor ~= f.user_id then notify(f, f.user_id, n.payload, n.score) end
    end
    redis.call('DEL', pkey)
  end
  if f.target then
    local author = redis.call('GET', K.author(f.target))
    if author then
      if author ~= f.user_id then notify(f, author, f.payload, f.score) end
    else
      local pkey = K.pending(f.target)
      local item = {actor = f.user_id, payload = f.payload, score = f.score}
      redis.call('RPUSH', pkey, cjson.encode(item))
      redis.call('EXPIRE', pkey, tonumber(f.pending_ttl))
    end
  end
end

local function apply_live(f)
  local key = K.live(f.session_id)
  local t = f.teacher_id .. '|'
  -- class_id is the latest snapshot's, by (duration_seconds, event_id), as in
  -- PostgreSQL's LATEST merge (MergedTable): whatever the arrival order.
  local rank = string.format('%010d', tonumber(f.duration_seconds)) .. '|' .. f.event_id
  local held = redis.call('HGET', key, t .. 'class_rank')
  if not held or rank > held then
    redis.call('HSET', key, t .. 'class_id', f.class_id, t .. 'class_rank', rank)
  end
  merge_fields(key, f.teacher_id, f, live_rules)
  redis.call('EXPIRE', key, tonumber(f.ttl))
  bump('live', f.session_id, tonumber(f.ttl))
end

-- content_activity and feedback only count.
local merges = {lesson_progress = apply_progress, quiz_attempt = apply_quiz,
                forum_activity = apply_forum, live_class_engagement = apply_live}

-- Claim the event id; returns the bucket to count in, or nil when it was applied before.
-- The claim holds the content's digest: a second, different version of an
-- event_id is a conflict (SPEC 13), counted and dropped; the first is kept.
local function claim(event_id, kind, f)
  local seen = K.seen(event_id)
  if not redis.call('SET', seen, f.digest, 'NX', 'EX', dedupe_ttl) then
    local first = redis.call('GET', seen)
    if first and first ~= f.digest then
      redis.call('HINCRBY', K.conflicts(), 'realtime', 1)
      conflicts[#conflicts + 1] = event_id
    end
    return nil
  end
  local ckey = K.bucket(bucket)
  redis.call('HINCRBY', ckey, 'events|' .. kind, 1)
  bucket_end = f.bucket_end
  return ckey
end

-- Whether a user is erased, asked once per user and call.
local erased = {}
local function is_erased(user)
  if erased[user] == nil then
    erased[user] = redis.call('SISMEMBER', K.tombstones(), redis.sha1hex(user)) == 1
  end
  return erased[user]
end

-- One event: nothing if it names an erased user or was applied before ('' in a
-- rebuild: no claim, no counting); else its view updates. 1 when applied.
local function apply(event_id, kind, f)
  for _, u in ipairs(f.users) do
    if is_erased(u) then return 0 end
  end
  local ckey = nil
  if event_id ~= '' then
    ckey = claim(event_id, kind, f)
    if not ckey then return 0 end
  end
  local merge = merges[kind]
  if merge then merge(f, ckey) end
  return 1
end

local applied = 0
for _, e in ipairs(events) do
  applied = applied + apply(live and e[1] or '', e[2], e[3])
end
-- The bucket is due for roll-up at its end (once per call: one bucket per call).
if bucket_end then redis.call('ZADD', K.buckets(), bucket_end, bucket) end
return {applied, conflicts}
"""


# Atomically move every due counter bucket to a claim key of its own. Late
# increments to a claimed bucket start a fresh bucket key, rolled up later; a
# claim key is never written again, so every reader of it sees the same data.
# ARGV: prefix, due-before epoch, claim suffix. Returns every open claim,
# including ones a crashed roll-up left behind.
CLAIM_BODY = r"""
for _, bucket in ipairs(redis.call('ZRANGEBYSCORE', K.buckets(), '-inf', ARGV[2])) do
  redis.call('ZREM', K.buckets(), bucket)
  local key = K.bucket(bucket)
  if redis.call('EXISTS', key) == 1 then
    local claim = bucket .. ':' .. ARGV[3]
    redis.call('RENAME', key, K.claim(claim))
    redis.call('SADD', K.claims(), claim)
  end
end
return redis.call('SMEMBERS', K.claims())
"""


# Erase one user from one key, atomically with respect to the apply script.
# KEYS[1]: the key; ARGV: prefix, user id, inverted user id (leaderboard
# members), a random token (renamed counter fields). Returns items removed.
ERASE_BODY = r"""
local user, inverted, token = ARGV[2], ARGV[3], ARGV[4]
local key = KEYS[1]
local shape, parts = K.parse(key)
local id = parts[1]
local own = {progress = true, notifications = true, notifications_loaded = true}
if (own[shape] and id == user)
    or (shape == 'version' and (id == 'progress' or id == 'notif') and parts[2] == user) then
  return redis.call('DEL', key)
end
local kind = redis.call('TYPE', key).ok
local removed = 0
local s = user .. '|'
if shape == 'standings' and kind == 'hash' then
  local member = redis.call('HGET', key, s .. 'member')
  if member then
    removed = removed + redis.call('ZREM', K.leaderboard(id), member)
  end
  removed = removed
    + redis.call('HDEL', key, s .. 'best', s .. 'at', s .. 'member', s .. 'attempts')
elseif shape == 'leaderboard' and kind == 'zset' then
  -- Normally gone with the standings entry; this catches a member without one.
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(member, -#inverted - 1) == '|' .. inverted then
      removed = removed + redis.call('ZREM', key, member)
    end
  end
elseif shape == 'notifications' and kind == 'zset' then
  local needle = '"actor_id":"' .. user .. '"'
  for _, item in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.find(item, needle, 1, true) then removed = removed + redis.call('ZREM', key, item) end
  end
elseif shape == 'pending' and kind == 'list' then
  for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
    if string.find(item, user, 1, true) then
      removed = removed + redis.call('LREM', key, 0, item)
    end
  end
elseif shape == 'author' and kind == 'string' then
  if redis.call('GET', key) == user then removed = redis.call('DEL', key) end
elseif shape == 'live' and kind == 'hash' then
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
elseif shape == 'lesson' and kind == 'zset' then
  removed = redis.call('ZREM', key, user)
elseif (shape == 'bucket' or shape == 'claim') and kind == 'hash' then
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
local view_of = {leaderboard = 'lb', standings = 'lb', notifications = 'notif', live = 'live',
                 lesson = 'lesson'}
local view = view_of[shape]
if removed > 0 and view and redis.call('EXISTS', K.version(view, id)) == 1 then
  redis.call('INCR', K.version(view, id))
end
return removed
"""

APPLY = lua_prelude() + APPLY_BODY
CLAIM = lua_prelude() + CLAIM_BODY
ERASE = lua_prelude() + ERASE_BODY
