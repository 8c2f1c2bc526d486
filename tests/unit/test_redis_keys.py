"""The Redis key layout is defined once (shared/repositories/redis_keys.py): the
Lua scripts build and parse keys with functions generated from the same table,
so Python and Lua cannot disagree. The last test runs the scripts against real
Redis under a private prefix and checks the keys they create, claim and erase
are exactly the ones the keys module names for those events."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from shared.models.events import ActivityEvent, event_adapter
from shared.repositories import realtime_scripts
from shared.repositories.realtime import RealtimeRepository
from shared.repositories.redis_keys import (
    ATTEMPTS,
    AUTHOR,
    BUCKET,
    BUCKETS,
    CLAIM,
    CLAIMS,
    CONFLICTS,
    LEADERBOARD,
    LESSON,
    LIVE,
    NOTIFICATIONS,
    PENDING,
    PROGRESS,
    SEEN,
    SHAPES,
    STANDINGS,
    TOMBSTONES_LOADED,
    VERSION,
    KeyShape,
    RedisKeys,
    bucket_id,
)
from tests import factories as f
from tests.conftest import REDIS_URL

SAMPLE_PARTS = {"bucket": "60:1764547200", "claim": "60:1764547200:0af3"}


def sample(shape: KeyShape) -> tuple[str, ...]:
    return tuple(SAMPLE_PARTS.get(part, str(uuid.uuid4())) for part in shape.parts)


@pytest.mark.parametrize("prefix", ["activity:", "test:run-1:"])
def test_every_shape_parses_back_to_itself_and_no_other(prefix: str) -> None:
    keys = RedisKeys(prefix)
    for shape in SHAPES:
        parts = sample(shape)
        assert keys.parse(keys(shape, *parts)) == (shape, parts)
    assert len({shape.name for shape in SHAPES}) == len(SHAPES)
    assert len({shape.template for shape in SHAPES}) == len(SHAPES)
    assert keys.parse("other:progress:x") is None
    assert keys.parse(prefix + "progress:a:b") is None  # an id is one segment


@pytest.mark.parametrize("body", ["APPLY_BODY", "CLAIM_BODY", "ERASE_BODY"])
def test_no_script_builds_a_key_by_hand(body: str) -> None:
    source = getattr(realtime_scripts, body)
    # The prefix (ARGV[1], `p`) is used by the generated K functions only.
    assert not re.search(r"\bp\s*\.\.", source)
    assert "ARGV[1]" not in source
    script = getattr(realtime_scripts, body.removesuffix("_BODY"))
    assert script.endswith(source)
    for shape in SHAPES:
        assert f"function K.{shape.name}(" in script


def events_of_every_kind(ids: dict[str, str]) -> list[ActivityEvent]:
    raw = [
        f.lesson_progress(student_id=ids["student"], lesson_id=ids["lesson"]),
        f.quiz_attempt(student_id=ids["student"], quiz_id=ids["quiz"]),
        # A like that arrives before its post waits for the post's author.
        f.forum_activity(action_type="like", user_id=ids["liker"], post_id=ids["post"])
        | {"content": None},
        f.forum_activity(user_id=ids["author"], post_id=ids["post"]),
        # A reply to a post never seen: it waits, and its own author is recorded.
        f.forum_activity(
            action_type="reply",
            user_id=ids["replier"],
            post_id=ids["reply"],
            parent_post_id=ids["unseen"],
        ),
        f.live_class_engagement(teacher_id=ids["teacher"], session_id=ids["session"]),
        f.content_activity(),
        f.feedback(),
    ]
    return [event_adapter.validate_python(event) for event in raw]


def keys_of(
    keys: RedisKeys, events: list[ActivityEvent], ids: dict[str, str], bucket: str
) -> set[str]:
    """The keys the keys module names for ``events_of_every_kind`` and one second version."""
    return {keys(SEEN, event.event_id) for event in events} | {
        keys(TOMBSTONES_LOADED),
        keys(CONFLICTS),
        keys(BUCKET, bucket),
        keys(BUCKETS),
        keys(PROGRESS, ids["student"]),
        keys(LESSON, ids["lesson"]),
        keys(VERSION, "progress", ids["student"]),
        keys(VERSION, "lesson", ids["lesson"]),
        keys(STANDINGS, ids["quiz"]),
        keys(LEADERBOARD, ids["quiz"]),
        keys(ATTEMPTS, ids["quiz"]),
        keys(VERSION, "lb", ids["quiz"]),
        keys(AUTHOR, ids["post"]),
        keys(AUTHOR, ids["reply"]),
        keys(NOTIFICATIONS, ids["author"]),
        keys(VERSION, "notif", ids["author"]),
        keys(PENDING, ids["unseen"]),
        keys(LIVE, ids["session"]),
        keys(VERSION, "live", ids["session"]),
    }


@pytest.mark.services
def test_the_scripts_create_claim_and_erase_exactly_the_keys_the_module_names(
    redis_prefix: str,
) -> None:
    prefix = f"{redis_prefix}keys-{uuid.uuid4().hex[:8]}:"
    realtime = RealtimeRepository(REDIS_URL, prefix, 60)
    keys = RedisKeys(prefix)
    names = "student lesson quiz liker author post replier reply unseen teacher session"
    ids = {name: str(uuid.uuid4()) for name in names.split()}
    events = events_of_every_kind(ids)
    at = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    try:
        assert realtime.apply_events(events, at) == len(events)
        feedback = events[-1].model_dump(mode="json") | {"score": 1.0}  # a second version
        changed = event_adapter.validate_python(feedback)
        assert realtime.apply_events([changed], at) == 0

        bucket = bucket_id(60, int(datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()))
        expected = keys_of(keys, events, ids, bucket)
        assert stored(realtime) == expected

        # The export reads those keys back by the same shapes.
        assert realtime.user_data(uuid.UUID(ids["student"]))["leaderboards"].keys() == {ids["quiz"]}
        assert realtime.user_data(uuid.UUID(ids["author"]))["posts"] == [ids["post"]]
        teacher = realtime.user_data(uuid.UUID(ids["teacher"]))
        assert teacher["live_sessions"].keys() == {ids["session"]}

        due = int(datetime(2026, 12, 1, 10, 2, tzinfo=UTC).timestamp())
        assert realtime.claim_due_buckets(due, "0af3") == [f"{bucket}:0af3"]
        expected -= {keys(BUCKET, bucket), keys(BUCKETS)}
        expected |= {keys(CLAIM, f"{bucket}:0af3"), keys(CLAIMS)}
        assert stored(realtime) == expected

        # Erasure finds the student's keys by shape: their own go, shared ones lose them.
        assert realtime.erase_user(uuid.UUID(ids["student"])) > 0
        expected -= {
            keys(PROGRESS, ids["student"]),
            keys(VERSION, "progress", ids["student"]),
            keys(LESSON, ids["lesson"]),  # its only student
            keys(STANDINGS, ids["quiz"]),
            keys(LEADERBOARD, ids["quiz"]),
        }
        assert stored(realtime) == expected
        claimed = realtime.read_claim(f"{bucket}:0af3")
        assert not [field for field in claimed if ids["student"] in field]
    finally:
        for key in realtime.client.scan_iter(match=prefix + "*"):
            realtime.client.delete(key)
        realtime.close()


def stored(realtime: RealtimeRepository) -> set[str]:
    return set(realtime.client.scan_iter(match=realtime.prefix + "*", count=1000))
