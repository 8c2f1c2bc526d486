"""Every limit the service enforces, in one place.

The models, the ingest service, the queue packer, the archive writer and the
OpenAPI document all read these names; nothing else hard-codes a limit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# --- request ---------------------------------------------------------------
MAX_EVENTS_PER_REQUEST = 500
MAX_REQUEST_BYTES = 1024 * 1024  # 1 MiB

# --- event times -----------------------------------------------------------
MAX_FUTURE_SKEW = timedelta(minutes=5)
# Nothing on the platform predates this; older timestamps are client bugs.
MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

# --- strings ---------------------------------------------------------------
MAX_CONTENT_CHARS = 32_000  # forum post / reply body
MAX_FEEDBACK_TEXT_CHARS = 32_000
MAX_TITLE_CHARS = 500
MAX_CHANGES_SUMMARY_CHARS = 4_000
MAX_SECTION_NAME_CHARS = 200

# --- lists and numbers ------------------------------------------------------
MAX_SECTIONS_READ = 1_000
MAX_POLLS_LAUNCHED = 1_000
MAX_ATTEMPT_NUMBER = 10_000
MAX_SCORE = 1_000_000.0
MAX_DURATION_SECONDS = 366 * 24 * 3600  # a year, for any duration or watch time
MAX_MESSAGES_SENT = 1_000_000

# --- quiz answers (question_id -> answer) ------------------------------------
MAX_ANSWERS = 500  # questions per attempt
MAX_QUESTION_ID_CHARS = 100
MAX_ANSWERS_DEPTH = 4  # nesting of an answer value (list/object) below the question
MAX_ANSWERS_JSON_CHARS = 64_000  # the whole answers object, serialized

# --- queue messages ------------------------------------------------------------
# Azure Storage queues accept at most 64 KiB per message, counted after the
# base64 encoding the Functions host expects (host.json messageEncoding).
QUEUE_MESSAGE_MAX_BYTES = 64 * 1024
# Raw JSON that still fits once base64 grows it by 4/3 (with a little headroom).
QUEUE_PAYLOAD_MAX_BYTES = (QUEUE_MESSAGE_MAX_BYTES // 4) * 3 - 512

# --- riding out outages (SPEC 13) --------------------------------------------------------
# A message whose sink failed because a dependency is down is sent again with
# these delays (then the last one, again and again) until this long after its
# first failure: a database failover or a cache restart takes minutes, and the
# queue keeps a message 7 days. Settings SINK_RETRY_DELAYS / _HORIZON_SECONDS.
SINK_RETRY_DELAYS_SECONDS = (10, 30, 60, 120, 300)
SINK_RETRY_HORIZON = timedelta(hours=24)

# --- archive (Azure Table storage) ------------------------------------------------
TABLE_BATCH_MAX_ENTITIES = 100  # entity-group transaction limit
TABLE_BATCH_MAX_BYTES = 3 * 1024 * 1024  # service limit is 4 MiB; keep headroom
TABLE_PROPERTY_MAX_CHARS = 32_000  # 64 KiB of UTF-16 per string property
TABLE_ENTITY_MAX_BYTES = 1024 * 1024
# Partitions of each monthly archive table; a user's entities are a RowKey range
# in one of them (docs/archive.md). Part of the stored layout: never change it
# for tables that hold data.
ARCHIVE_PARTITIONS = 4

# --- read API -------------------------------------------------------------------
LEADERBOARD_DEFAULT_LIMIT = 10
LEADERBOARD_MAX_LIMIT = 100
NOTIFICATIONS_DEFAULT_LIMIT = 20
NOTIFICATIONS_MAX_LIMIT = 100
# A lesson's live view: its most recently active students (a class, or the top of a MOOC).
LESSON_STUDENTS_DEFAULT_LIMIT = 100
LESSON_STUDENTS_MAX_LIMIT = 500

# --- reports (SPEC section 8) -----------------------------------------------------------
RECENT_ACTIVITY_ITEMS = 20  # the student report's newest events
# Lesson report: progress_over_time covers the last `days` UTC days.
LESSON_PROGRESS_DEFAULT_DAYS = 30
LESSON_PROGRESS_MAX_DAYS = 366
FORUM_TRENDING_DEFAULT_HOURS = 24
FORUM_TRENDING_MAX_HOURS = 24 * 31
FORUM_CONTRIBUTORS_DEFAULT_DAYS = 7
FORUM_CONTRIBUTORS_MAX_DAYS = 92
FORUM_REPORT_DEFAULT_LIMIT = 10
FORUM_REPORT_MAX_LIMIT = 100
# Activity report: the longest [from, to) span per bucket size, so one request
# returns at most ~1,500 buckets per event type.
ACTIVITY_MAX_SPAN_MINUTE = timedelta(days=1)
ACTIVITY_MAX_SPAN_HOUR = timedelta(days=62)
ACTIVITY_MAX_SPAN_DAY = timedelta(days=1100)
ACTIVITY_DEFAULT_SPAN = timedelta(hours=24)  # when `from` is absent: `to` minus this
OVERVIEW_ITEMS = 50  # per section of a person's overview (the dashboard index)
RECOMMENDATIONS_DEFAULT_LIMIT = 5
RECOMMENDATIONS_MAX_LIMIT = 50
# next_lesson looks at the student's latest completed lessons and, for each, at
# the latest completers: seeds x peers index probes bound its cost.
RECOMMENDATIONS_SEED_LESSONS = 10
RECOMMENDATIONS_PEER_SAMPLE = 50

# --- people and access (SPEC section 10) ---------------------------------------------------
# Easy Auth's principal header; Entra ID principals with many group claims run to a few KiB.
MAX_PRINCIPAL_HEADER_CHARS = 32_768
# A teacher's interest in a student (and the like) once found true is reused this long:
# it only grows with new events, and dashboards poll every second or two.
ACCESS_FACT_CACHE_SECONDS = 300
ACCESS_FACT_CACHE_SIZE = 100_000

# --- privacy (SPEC section 9) ------------------------------------------------------------
EXPORT_PAGE_DEFAULT_LIMIT = 500  # rows / archive records per export page
EXPORT_PAGE_MAX_LIMIT = 5_000
DISCLOSURES_DEFAULT_LIMIT = 100
DISCLOSURES_MAX_LIMIT = 1_000

# --- real-time store (Redis): expiry, in seconds, and sizes (docs/realtime.md) -----------
# An event id's dedupe claim: as long as a queue message lives, so no redelivery outlives it.
DEDUPE_TTL = 7 * 24 * 3600
PROGRESS_TTL = 30 * 24 * 3600  # a student's progress hash and a lesson's students, renewed by use
LEADERBOARD_TTL = 30 * 24 * 3600  # a quiz's leaderboard, standings and counted attempts
NOTIFICATIONS_TTL = 30 * 24 * 3600  # a user's notifications, renewed by each new one
LIVE_SESSION_TTL = 2 * 24 * 3600  # a live session's dashboard (sessions last hours)
POST_AUTHOR_TTL = 90 * 24 * 3600  # a post's author, so replies and likes notify them
# A reply or like waiting for its post to arrive (so its author is known).
PENDING_NOTIFICATION_TTL = 7 * 24 * 3600
NOTIFICATIONS_KEPT = 500  # newest notifications kept per user
REBUILD_CHUNK = 1000  # stored rows merged per script call when a view is rebuilt
