"""The simulator's event generator: valid per the models, coherent, reproducible."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from scripts import eventgen
from scripts.eventgen import Config, batches, deliver, generate, world_events
from shared.models.events import EVENT_TYPES, event_adapter

# A little in the past, so nothing generated is "in the future" when validated.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
CONFIG = Config(events=4000, batch=50, duplicates=0.05, shuffle=0.1, seed=11, now=NOW)
ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
TIME_FIELDS = (
    "started_at",
    "completed_at",
    "last_accessed_at",
    "submitted_at",
    "created_at",
    "timestamp",
    "joined_at",
    "left_at",
)

Event = dict[str, Any]


@pytest.fixture(scope="module")
def stream() -> list[Event]:
    return list(generate(CONFIG))


@pytest.fixture(scope="module")
def world() -> list[Event]:
    return list(world_events(CONFIG))


@pytest.fixture(scope="module", params=["stream", "bulk"])
def made(request: pytest.FixtureRequest, world: list[Event]) -> list[Event]:
    """The world's events from each generator: one at a time, or in numpy columns
    (the bulk loader's), put in event-time order; the same invariants hold for both."""
    if request.param == "stream":
        return world
    from scripts.eventgen import bulk

    events = [event for table in bulk.tables(CONFIG) for event in table.events()]
    return sorted(events, key=lambda raw: event_adapter.validate_python(raw).occurred_at)


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def test_every_event_validates_against_the_models(stream: list[Event]) -> None:
    for raw in stream:
        event = event_adapter.validate_python(raw)
        assert event.model_dump(mode="json")["event_id"] == raw["event_id"]


def test_every_type_is_generated(made: list[Event]) -> None:
    counts = Counter(event["type"] for event in made)
    assert set(counts) == set(EVENT_TYPES)
    assert counts["lesson_progress"] > counts["content_activity"]


def test_events_are_plain_json_with_zoned_timestamps(made: list[Event]) -> None:
    for event in made:
        assert json.loads(json.dumps(event)) == event
        for name in TIME_FIELDS:
            if event.get(name) is not None:
                assert ZONED.match(event[name]), (name, event[name])
    ints = ("video_watch_time", "attempt_number", "duration_seconds", "messages_sent")
    for event in made:
        for name in ints:
            if name in event:
                assert type(event[name]) is int


def test_event_times_lie_in_the_window(made: list[Event]) -> None:
    start = NOW - timedelta(days=CONFIG.days)
    for raw in made:
        moment = event_adapter.validate_python(raw).occurred_at
        assert start <= moment <= NOW


def test_world_is_in_event_time_order(world: list[Event]) -> None:
    # live_class_engagement's event time is joined_at, which later snapshots of
    # the same session repeat; every other type happens at its event time.
    times = [
        event_adapter.validate_python(raw).occurred_at
        for raw in world
        if raw["type"] != "live_class_engagement"
    ]
    assert times == sorted(times)


def test_duplicates_resend_the_same_event(stream: list[Event]) -> None:
    assert len(stream) == CONFIG.total_deliveries == 4000 + 200
    by_id: dict[str, list[Event]] = defaultdict(list)
    for event in stream:
        by_id[event["event_id"]].append(event)
    assert len(by_id) == CONFIG.events
    repeated = [copies for copies in by_id.values() if len(copies) > 1]
    assert len(repeated) == CONFIG.duplicate_count
    for copies in repeated:
        assert len(copies) == 2
        assert copies[0] == copies[1]


def test_duplicates_land_in_the_same_and_in_other_batches(stream: list[Event]) -> None:
    batch_of: dict[str, list[int]] = defaultdict(list)
    for number, batch in enumerate(batches(stream, CONFIG.batch)):
        for event in batch:
            batch_of[event["event_id"]].append(number)
    pairs = [numbers for numbers in batch_of.values() if len(numbers) == 2]
    same = sum(1 for first, second in pairs if first == second)
    assert 0 < same < len(pairs)


def test_a_fraction_arrives_out_of_order(stream: list[Event], world: list[Event]) -> None:
    position = {event["event_id"]: index for index, event in enumerate(world)}
    arrival = [position[event["event_id"]] for event in stream]
    # An event arrives late when something that happened after it came first.
    overtaken = sum(1 for earlier, later in pairwise(arrival) if earlier > later)
    assert CONFIG.events * 0.05 < overtaken < CONFIG.events * 0.3


def test_without_duplicates_or_shuffle_the_stream_is_the_world() -> None:
    config = Config(events=500, duplicates=0.0, shuffle=0.0, seed=2, now=NOW)
    assert list(generate(config)) == list(world_events(config))


def test_same_seed_same_stream_and_delivery_never_changes_the_world() -> None:
    config = Config(events=800, seed=5, now=NOW)
    assert list(generate(config)) == list(generate(config))
    other_seed = Config(events=800, seed=6, now=NOW)
    assert list(world_events(other_seed)) != list(world_events(config))
    messier = Config(events=800, seed=5, now=NOW, duplicates=0.5, shuffle=0.5, batch=7)
    assert list(world_events(messier)) == list(world_events(config))
    assert sorted(map(json.dumps, deliver(world_events(config), messier))) != sorted(
        map(json.dumps, generate(config))
    )


def test_replies_and_likes_reference_earlier_posts_of_their_thread(made: list[Event]) -> None:
    posts: dict[str, Event] = {}
    likes: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    for event in made:
        if event["type"] != "forum_activity":
            continue
        action = event["action_type"]
        counts[action] += 1
        if action == "like":
            liked = posts[event["post_id"]]
            assert liked["thread_id"] == event["thread_id"]
            assert liked["user_id"] != event["user_id"], "nobody likes their own post"
            assert (event["user_id"], event["post_id"]) not in likes
            likes.add((event["user_id"], event["post_id"]))
            assert "content" not in event
            continue
        assert event["post_id"] not in posts
        if action == "reply":
            parent = posts[event["parent_post_id"]]
            assert parent["thread_id"] == event["thread_id"]
            assert parse(parent["created_at"]) <= parse(event["created_at"])
        else:
            assert "parent_post_id" not in event
        posts[event["post_id"]] = event
    assert set(counts) == {"post", "reply", "like"}


def test_lesson_progress_only_moves_forward(made: list[Event]) -> None:
    last: dict[tuple[str, str], Event] = {}
    for event in made:
        if event["type"] != "lesson_progress":
            continue
        key = (event["student_id"], event["lesson_id"])
        before = last.get(key)
        if before is not None:
            assert event["started_at"] == before["started_at"]
            assert event["progress_percent"] >= before["progress_percent"]
            assert event["video_watch_time"] >= before["video_watch_time"]
            assert (
                event["sections_read"][: len(before["sections_read"])] == (before["sections_read"])
            )
            if before["completed_at"] is not None:
                assert event["completed_at"] == before["completed_at"]
        if event["completed_at"] is not None:
            assert event["progress_percent"] == 100.0
        last[key] = event
    finished = sum(1 for event in last.values() if event["completed_at"] is not None)
    assert 0 < finished < len(last), "some lessons are completed, not all"


def test_quiz_attempts_count_up_with_a_new_attempt_id_each(made: list[Event]) -> None:
    numbers: dict[tuple[str, str], list[int]] = defaultdict(list)
    attempt_ids: set[str] = set()
    for event in made:
        if event["type"] != "quiz_attempt":
            continue
        numbers[(event["student_id"], event["quiz_id"])].append(event["attempt_number"])
        assert event["attempt_id"] not in attempt_ids
        attempt_ids.add(event["attempt_id"])
    for sequence in numbers.values():
        assert sequence == list(range(1, len(sequence) + 1))
    assert max(len(sequence) for sequence in numbers.values()) > 1, "some students retry"


def test_live_sessions_accumulate_and_end_once(made: list[Event]) -> None:
    last: dict[tuple[str, str], Event] = {}
    for event in made:
        if event["type"] != "live_class_engagement":
            continue
        key = (event["session_id"], event["teacher_id"])
        before = last.get(key)
        if before is not None:
            assert before["left_at"] is None, "no snapshot after leaving"
            assert event["joined_at"] == before["joined_at"]
            assert event["class_id"] == before["class_id"]
            assert event["duration_seconds"] >= before["duration_seconds"]
            assert event["messages_sent"] >= before["messages_sent"]
            polls = before["polls_launched"]
            assert event["polls_launched"][: len(polls)] == polls
        if event["left_at"] is not None:
            seconds = (parse(event["left_at"]) - parse(event["joined_at"])).total_seconds()
            assert event["duration_seconds"] == int(seconds)
        last[key] = event
    assert any(event["left_at"] is not None for event in last.values())
    teachers_per_session = Counter(session for session, _ in last)
    assert max(teachers_per_session.values()) >= 2, "some sessions are co-taught"


def test_content_is_created_before_it_is_updated_or_studied(made: list[Event]) -> None:
    created_at: dict[str, int] = {}
    content_type: dict[str, str] = {}
    mentioned: set[str] = set()
    for index, event in enumerate(made):
        if event["type"] == "content_activity":
            content_id = event["content_id"]
            assert (
                content_type.setdefault(content_id, event["content_type"])
                == (event["content_type"])
            )
            if event["action"] == "created":
                assert content_id not in mentioned, "created after first use"
                created_at[content_id] = index
            else:
                assert event["changes_summary"]
            mentioned.add(content_id)
        elif event["type"] in ("lesson_progress", "quiz_attempt"):
            content_id = event.get("lesson_id") or event["quiz_id"]
            assert created_at.get(content_id, -1) < index
            mentioned.add(content_id)
    assert created_at, "teachers create content during the window"


def test_activity_is_skewed(made: list[Event]) -> None:
    per_student = Counter(e["student_id"] for e in made if e["type"] == "lesson_progress")
    busiest = sum(count for _, count in per_student.most_common(CONFIG.students // 10))
    assert busiest > 0.3 * sum(per_student.values())
    per_thread = Counter(e["thread_id"] for e in made if e["type"] == "forum_activity")
    ranked = [count for _, count in per_thread.most_common()]
    assert ranked[0] >= 10 * ranked[len(ranked) // 2]


def test_batches_split_without_losing_events() -> None:
    sizes = [len(batch) for batch in batches(range(250), 100)]
    assert sizes == [100, 100, 50]
    assert list(batches([], 10)) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"students": 0}, "students must be at least 1"),
        ({"events": -1}, "events must not be negative"),
        ({"duplicates": 1.5}, "duplicates must be a fraction"),
        ({"shuffle": -0.1}, "shuffle must be a fraction"),
        ({"days": 0}, "days must be positive"),
        ({"now": datetime(2026, 1, 1)}, "now must carry a time zone"),
        ({"mix": {"gossip": 1.0}}, "unknown event types: gossip"),
        ({"mix": {"feedback": 0.0}}, "at least one positive"),
    ],
)
def test_config_rejects_nonsense(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**bad)


def test_mix_restricts_the_types() -> None:
    config = Config(events=300, seed=4, now=NOW, mix={"forum_activity": 1.0})
    assert {event["type"] for event in generate(config)} == {"forum_activity"}
    assert eventgen.DEFAULT_MIX.keys() == set(EVENT_TYPES)
