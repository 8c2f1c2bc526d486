"""Pure pieces of the real-time layer: orderings and roll-up aggregation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.models.rollups import RollupRow
from shared.repositories.realtime_model import (
    bucket_start,
    leaderboard_member,
    parse_redis_ts,
    redis_ts,
    student_from_member,
)
from shared.services.rollup import aggregate

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(moments, moments)
def test_redis_timestamps_sort_like_time(a: datetime, b: datetime) -> None:
    assert (redis_ts(a) < redis_ts(b)) == (a < b)
    assert parse_redis_ts(redis_ts(a)) == a


@given(moments, moments, st.uuids(), st.uuids())
def test_leaderboard_members_order_ties_like_the_spec(
    a: datetime, b: datetime, s1: uuid.UUID, s2: uuid.UUID
) -> None:
    # Redis returns equal scores in descending member order: the earlier
    # submission, then the smaller student id, must have the larger member.
    m1, m2 = leaderboard_member(str(s1), a), leaderboard_member(str(s2), b)
    a_us, b_us = int(a.timestamp() * 1e6), int(b.timestamp() * 1e6)
    if a_us != b_us:
        assert (m1 > m2) == (a_us < b_us)
    elif s1 != s2:
        assert (m1 > m2) == (str(s1) < str(s2))
    assert student_from_member(m1) == str(s1)


def test_bucket_start_aligns_to_the_width() -> None:
    moment = datetime(2026, 11, 24, 10, 0, 59, 999_000, tzinfo=UTC)
    assert bucket_start(moment, 60) == int(datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp())
    assert bucket_start(moment + timedelta(milliseconds=1), 60) == bucket_start(moment, 60) + 60


def test_aggregate_counts_each_metric_and_distinct_students() -> None:
    start = int(datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp())
    counters = {
        "events|lesson_progress": "3",
        "events|quiz_attempt": "2",
        "las|L1|S1": "1",
        "las|L1|S2": "1",
        "las|L2|S1": "1",
        "forum_thread_actions|T1": "4",
        "quiz_attempts|Q1": "2",
    }
    rows = aggregate(f"60:{start}:abc", counters)
    at = datetime.fromtimestamp(start, UTC)
    assert set(rows) == {
        RollupRow(at, 60, "events", "lesson_progress", 3),
        RollupRow(at, 60, "events", "quiz_attempt", 2),
        RollupRow(at, 60, "lesson_active_students", "L1", 2),
        RollupRow(at, 60, "lesson_active_students", "L2", 1),
        RollupRow(at, 60, "forum_thread_actions", "T1", 4),
        RollupRow(at, 60, "quiz_attempts", "Q1", 2),
    }


def test_aggregate_of_an_empty_claim_is_empty() -> None:
    assert aggregate("60:0:abc", {}) == []
