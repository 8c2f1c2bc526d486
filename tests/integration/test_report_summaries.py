"""The per-day summaries behind two reports stay exact (sql/011, sql/012).

progress_over_time (lesson report) and forum contributors read summaries
kept by triggers at write time. These tests store events in the orders and
interleavings the queues can produce (a like before its post, one student's
progress in racing messages, redeliveries), erase users and apply retention,
and compare the reports with figures folded here, in Python, from the raw
events.
"""

from __future__ import annotations

import random
import shutil
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.migrate import SQL_DIR, load_migrations, migrate
from shared.models.events import ActivityEvent, event_adapter
from shared.models.rollups import RollupRow
from shared.repositories.postgres import PostgresRepository
from tests import factories as f
from tests.conftest import TestRun, scratch_database
from tests.integration.conftest import rows
from tests.integration.test_reports import get, lesson_expectations, new, parse

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = datetime.combine(NOW.date(), datetime.min.time(), UTC)


def at(**delta: float) -> str:
    return f.iso(NOW - timedelta(**delta))


def validated(raws: Sequence[dict[str, Any]]) -> list[ActivityEvent]:
    return [event_adapter.validate_python(raw) for raw in raws]


@pytest.fixture
def writers(test_run: TestRun) -> Iterator[PostgresRepository]:
    """A repository with enough connections for eight messages at once."""
    with PostgresRepository(test_run.postgres_dsn, max_size=8) as repository:
        yield repository


def persist_racing(
    postgres: PostgresRepository, messages: Sequence[Sequence[dict[str, Any]]]
) -> None:
    """Persist each message in its own transaction, eight at a time."""
    batches = [validated(message) for message in messages]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for stored in pool.map(lambda batch: postgres.persist_events(batch, NOW), batches):
            assert stored >= 0


# --- forum contributors ---------------------------------------------------------------------


def post(user: str, post_id: str, thread: str, **when: float) -> dict[str, Any]:
    return f.forum_activity(user_id=user, post_id=post_id, thread_id=thread, created_at=at(**when))


def reply(user: str, parent: str, thread: str, **when: float) -> dict[str, Any]:
    return f.forum_activity(
        user_id=user, thread_id=thread, action_type="reply", parent_post_id=parent,
        content="Try this", created_at=at(**when),
    )  # fmt: skip


def like(user: str, post_id: str, thread: str, **when: float) -> dict[str, Any]:
    return f.forum_activity(
        user_id=user, post_id=post_id, thread_id=thread, action_type="like", content=None,
        created_at=at(**when),
    )  # fmt: skip


def contributor_expectations(
    events: Sequence[dict[str, Any]], days: int
) -> dict[str, dict[str, Any]]:
    """Posts, replies and likes received in the window's UTC days, from the raw events.

    Each unique event once; a post id's author is the user of its earliest
    post or reply; likes by the author are not received.
    """
    since = TODAY - timedelta(days=days - 1)
    unique = {event["event_id"]: event for event in events}.values()
    authors: dict[str, tuple[datetime, str]] = {}
    for event in unique:
        if event["action_type"] != "like":
            moment = parse(event["created_at"])
            if event["post_id"] not in authors or moment < authors[event["post_id"]][0]:
                authors[event["post_id"]] = (moment, event["user_id"])
    figures: dict[str, Counter[str]] = defaultdict(Counter)
    for event in unique:
        if parse(event["created_at"]) < since:
            continue
        if event["action_type"] == "like":
            author = authors.get(event["post_id"], (NOW, None))[1]
            if author is not None and author != event["user_id"]:
                figures[author]["likes_received"] += 1
        else:
            figures[event["user_id"]]["posts" if event["action_type"] == "post" else "replies"] += 1
    return {
        user: {
            "user_id": user,
            "contributions": counts["posts"] + counts["replies"],
            "posts": counts["posts"],
            "replies": counts["replies"],
            "likes_received": counts["likes_received"],
        }
        for user, counts in figures.items()
        if counts["posts"] + counts["replies"] > 0
    }


def contributors(client: httpx.Client, users: set[str], days: int = 7) -> dict[str, Any]:
    body = get(client, f"v1/reports/forum/contributors?days={days}&limit=100")
    assert body["since"] == f.iso(TODAY - timedelta(days=days - 1))
    return {row["user_id"]: row for row in body["contributors"] if row["user_id"] in users}


def test_a_like_is_credited_whether_it_arrives_before_or_after_its_post(
    client: httpx.Client, postgres: PostgresRepository
) -> None:
    author, other, fan, critic = new(), new(), new(), new()
    thread, early, late, same, answer = new(), new(), new(), new(), new()
    same_post = post(author, same, thread, hours=4)
    posts = [
        *(post(author, new(), thread, hours=9 + n) for n in range(12)),  # ranks author high
        post(author, early, thread, hours=6),
        post(author, late, thread, hours=5),
        reply(other, early, thread, hours=3) | {"post_id": answer},
        *(reply(other, early, thread, hours=2, minutes=n) for n in range(11)),
    ]
    likes = [
        like(fan, late, thread, hours=1),  # stored before its post
        like(critic, late, thread, minutes=50),  # stored before its post
        like(author, late, thread, minutes=40),  # one's own post, before it: never received
        like(fan, early, thread, minutes=30),  # after its post
        like(author, answer, thread, minutes=20),  # after its reply
        like(fan, same, thread, minutes=10),  # in the same message as its post
        like(fan, new(), thread, minutes=5),  # a post never stored: nobody receives it
    ]
    events = [*posts, same_post, *likes]
    store = postgres.persist_events
    store(validated(likes[:3]), NOW)
    store(validated(posts + likes[3:5]), NOW)
    store(validated([same_post, likes[5], likes[6], likes[0]]), NOW)  # likes[0] redelivered
    store(validated(posts[12:14] + likes[3:4]), NOW)  # redelivered again

    expected = contributor_expectations(events, 7)
    assert expected[author]["likes_received"] == 4  # worked out by hand as well
    assert expected[other]["likes_received"] == 1
    assert contributors(client, {author, other, fan}) == expected


def test_contributors_counts_whole_utc_days_and_the_likes_in_them(
    client: httpx.Client, postgres: PostgresRepository
) -> None:
    author, fan = new(), new()
    thread, old_post, new_post = new(), new(), new()
    start_of_window = TODAY - timedelta(days=6)  # days=7: today and six days before
    events = [
        *(post(author, new(), thread, hours=n) for n in range(1, 13)),
        f.forum_activity(user_id=author, post_id=old_post, thread_id=thread,
                         created_at=f.iso(start_of_window - timedelta(minutes=1))),
        f.forum_activity(user_id=author, post_id=new_post, thread_id=thread,
                         created_at=f.iso(start_of_window)),
        # The first second of the window counts; the last second before it does not.
        like(fan, old_post, thread) | {"created_at": f.iso(start_of_window)},
        like(fan, new_post, thread) | {"created_at": f.iso(start_of_window - timedelta(seconds=1))},
    ]  # fmt: skip
    postgres.persist_events(validated(events), NOW)
    expected = contributor_expectations(events, 7)
    assert expected[author] == {
        "user_id": author, "contributions": 13, "posts": 13, "replies": 0, "likes_received": 1
    }  # fmt: skip
    assert contributors(client, {author, fan}) == expected
    assert contributors(client, {author}, days=8)[author]["posts"] == 14


def test_likes_are_credited_once_when_posts_and_likes_race(
    client: httpx.Client, writers: PostgresRepository
) -> None:
    rng = random.Random(4)
    thread = new()
    authors = [new() for _ in range(4)]
    fans = [new() for _ in range(10)]
    posts = {author: [new() for _ in range(15)] for author in authors}
    events: list[dict[str, Any]] = []
    for author, ids in posts.items():
        events += [post(author, post_id, thread, hours=20 - n) for n, post_id in enumerate(ids)]
    for _ in range(400):
        author = rng.choice(authors)
        liker = rng.choice([*fans, author])
        events.append(like(liker, rng.choice(posts[author]), thread, minutes=rng.randint(1, 600)))
    rng.shuffle(events)
    messages = [events[n : n + 7] for n in range(0, len(events), 7)]
    redelivered = [rng.choice(messages) for _ in range(20)]
    persist_racing(writers, messages + redelivered)

    expected = contributor_expectations(events, 7)
    assert sum(row["likes_received"] for row in expected.values()) > 300
    assert contributors(client, set(authors)) == expected


def test_erasing_a_liker_or_an_author_updates_contributors(
    client: httpx.Client, postgres: PostgresRepository, test_run: TestRun
) -> None:
    author, fan, other_fan = new(), new(), new()
    thread, first = new(), new()
    events = [
        post(author, first, thread, hours=3),
        *(post(author, new(), thread, hours=4 + n) for n in range(12)),
        like(fan, first, thread, hours=2),
        like(other_fan, first, thread, hours=1),
        post(fan, new(), thread, hours=1),
        *(reply(fan, first, thread, minutes=n) for n in range(1, 13)),
    ]
    postgres.persist_events(validated(events), NOW)
    assert contributors(client, {author, fan})[author]["likes_received"] == 2

    postgres.erase_user(uuid.UUID(fan), "test")
    remaining = [event for event in events if event["user_id"] != fan]
    assert contributors(client, {author, fan}) == contributor_expectations(remaining, 7)
    assert contributors(client, {author})[author]["likes_received"] == 1

    postgres.erase_user(uuid.UUID(author), "test")
    assert contributors(client, {author, fan}) == {}
    for table in ("forum_contributions", "forum_post_authors"):
        query = f"SELECT count(*) FROM {table} WHERE user_id = %s"
        assert rows(test_run.postgres_dsn, query, author) == [(0,)]


# --- lesson progress over time ---------------------------------------------------------------


def test_progress_over_time_stays_exact_when_messages_race(
    client: httpx.Client, writers: PostgresRepository
) -> None:
    rng = random.Random(7)
    lesson = new()
    students = [new() for _ in range(6)]
    events = []
    for student in students:
        for _ in range(25):
            hours_ago = rng.uniform(0, 24 * 5)
            events.append(
                f.lesson_progress(
                    student_id=student, lesson_id=lesson, started_at=at(days=6),
                    progress_percent=float(rng.randint(0, 100)),
                    last_accessed_at=at(hours=hours_ago),
                )
            )  # fmt: skip
    rng.shuffle(events)  # progress arrives out of order
    messages = [events[n : n + 5] for n in range(0, len(events), 5)]
    persist_racing(writers, messages + [rng.choice(messages) for _ in range(10)])

    report = get(client, f"v1/reports/lessons/{lesson}?days=7")
    expected = lesson_expectations(events, TODAY - timedelta(days=6))
    assert report["progress_over_time"] == expected["progress_over_time"]
    assert len(report["progress_over_time"]) >= 5


def test_progress_over_time_after_an_erasure(
    client: httpx.Client, postgres: PostgresRepository, test_run: TestRun
) -> None:
    lesson = new()
    kept, erased = new(), new()
    events = [
        f.lesson_progress(student_id=student, lesson_id=lesson, started_at=at(days=3),
                          progress_percent=progress, last_accessed_at=at(hours=hours))
        for student, progress, hours in [
            (kept, 20.0, 30), (kept, 50.0, 2), (erased, 90.0, 30), (erased, 10.0, 29),
            (erased, 70.0, 1),
        ]
    ]  # fmt: skip
    postgres.persist_events(validated(events), NOW)
    before = get(client, f"v1/reports/lessons/{lesson}?days=3")["progress_over_time"]
    assert before == lesson_expectations(events, TODAY - timedelta(days=2))["progress_over_time"]

    postgres.erase_user(uuid.UUID(erased), "test")
    remaining = [event for event in events if event["student_id"] == kept]
    after = get(client, f"v1/reports/lessons/{lesson}?days=3")["progress_over_time"]
    assert after == lesson_expectations(remaining, TODAY - timedelta(days=2))["progress_over_time"]
    query = "SELECT count(*) FROM lesson_daily_totals WHERE lesson_id = %s"
    assert rows(test_run.postgres_dsn, query, lesson) == [(len(after),)]


# --- the migrations' backfill -----------------------------------------------------------------

# Each summary's figures (raised_from is bookkeeping of the last raise).
SUMMARIES = {
    "forum_post_authors": "SELECT * FROM forum_post_authors ORDER BY post_id",
    "forum_contributions": "SELECT * FROM forum_contributions ORDER BY day, user_id",
    "forum_waiting_likes": "SELECT * FROM forum_waiting_likes ORDER BY post_id, day, user_id",
    "lesson_daily_progress": "SELECT lesson_id, day, student_id, best_percent "
    "FROM lesson_daily_progress ORDER BY lesson_id, day, student_id",
    "lesson_daily_totals": "SELECT * FROM lesson_daily_totals ORDER BY lesson_id, day",
}


@pytest.fixture
def two_databases(test_run: TestRun) -> Iterator[tuple[str, str]]:
    with (
        scratch_database(f"test_backfill_{test_run.run_id}_0") as before,
        scratch_database(f"test_backfill_{test_run.run_id}_1") as after,
    ):
        yield before, after


def summaries(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {table: conn.execute(query).fetchall() for table, query in SUMMARIES.items()}


def test_the_migrations_backfill_what_the_triggers_keep(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    """Events stored before migrations 011-012 get the summaries the triggers keep."""
    rng = random.Random(11)
    thread, lesson = new(), new()
    users = [new() for _ in range(5)]
    posts = [(rng.choice(users), new()) for _ in range(8)]
    events: list[dict[str, Any]] = [
        post(author, post_id, thread, hours=rng.randint(1, 200)) for author, post_id in posts
    ]
    events += [
        like(rng.choice(users), rng.choice(posts)[1], thread, hours=rng.randint(1, 200))
        for _ in range(40)
    ]
    events += [like(users[0], new(), thread, hours=3)]  # a post never stored: waits
    events += [
        f.lesson_progress(student_id=rng.choice(users), lesson_id=lesson,
                          progress_percent=float(rng.randint(0, 100)),
                          last_accessed_at=at(hours=rng.randint(1, 100)))
        for _ in range(40)
    ]  # fmt: skip
    rng.shuffle(events)
    messages = [validated(events[n : n + 9]) for n in range(0, len(events), 9)]

    before, after = two_databases
    for migration in load_migrations():
        # The persist statement of today needs the ledger's content_digest (016).
        if migration.name < "011" or migration.name.startswith("016"):
            shutil.copy(SQL_DIR / migration.name, tmp_path / migration.name)
    migrate(before, tmp_path)
    with PostgresRepository(before) as repository:
        for message in messages:
            repository.persist_events(message, NOW)
    migrate(before)  # 011 onwards: the backfill
    migrate(after)
    with PostgresRepository(after) as repository:
        for message in messages:
            repository.persist_events(message, NOW)

    kept = summaries(after)
    assert all(kept.values())
    assert summaries(before) == kept


def test_rebuilding_activity_totals_gives_what_the_trigger_keeps(
    postgres: PostgresRepository, test_run: TestRun
) -> None:
    base = datetime(2003, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 2000)
    counts = [(base + timedelta(minutes=n * 37), kind, n + 1) for n in range(90) for kind in "ab"]
    rollups = [RollupRow(moment, 60, "events", kind, value) for moment, kind, value in counts]
    assert postgres.commit_rollup(f"test-rebuild-{uuid.uuid4()}", rollups)
    query = "SELECT * FROM activity_event_totals ORDER BY unit, bucket_start, dimension"
    kept = rows(test_run.postgres_dsn, query)
    days = {moment.date() for moment, _, _ in counts}
    assert len([row for row in kept if row[0] == "day" and row[1].date() in days]) == 2 * len(days)

    rows(test_run.postgres_dsn, "SELECT activity_event_totals_rebuild()")
    assert rows(test_run.postgres_dsn, query) == kept
